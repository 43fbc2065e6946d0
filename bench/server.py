"""The dev server every benchmark starts: agentflow's settings (as `agentflow dev` gives them),
in-memory, on free ports."""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from agentflow.client.payloads import with_storage
from agentflow.worker.devserver_process import dev_server_args, temporal_binary


async def start_server(
    dynamic_config: bool = True, overrides: dict[str, object] | None = None
) -> WorkflowEnvironment:
    """A dev server with agentflow's settings (or the server's defaults), ``overrides`` on top;
    its client converts payloads as every client agentflow connects does (``with_storage``: one
    shared pydantic payload converter, no external store)."""
    args = dev_server_args()
    if not dynamic_config:  # the dev server's own defaults, search attributes only
        pairs = zip(args[::2], args[1::2], strict=True)
        args = [a for pair in pairs if pair[0] != "--dynamic-config-value" for a in pair]
    for key, value in (overrides or {}).items():  # later flags win
        args += ["--dynamic-config-value", f"{key}={value}"]
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=args,
        data_converter=await with_storage(pydantic_data_converter, None),
    )
