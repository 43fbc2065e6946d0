"""Record the golden histories in tests/histories/ (run after an intentional workflow change
that is guarded by ``workflow.patched``): ``.venv/bin/python -m tests.record_histories``.
Name flows to record only those (``… record_histories publish``), keeping the others as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from agentflow.client import Runner
from agentflow.devserver import dev_server_args, temporal_binary
from agentflow.errors import FlowFailedError
from tests.bus_goldens import BUS_GOLDENS, record_bus_goldens
from tests.conftest import running_worker
from tests.flows import sample_flows
from tests.session_goldens import SESSION_GOLDENS, record_session_goldens

HISTORIES = Path(__file__).parent / "histories"


async def record(names: list[str]) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=dev_server_args(),
        data_converter=pydantic_data_converter,
    )
    async with env:
        for name, (config, data, options) in sample_flows().items():
            if names and name not in names:
                continue
            async with running_worker(env.client, config) as task_queue:
                handle = await Runner(config, env.client, task_queue).start(
                    data, workflow_id=f"golden-{name}", **options
                )
                with contextlib.suppress(FlowFailedError):
                    await handle.result()
                history = await handle.handle.fetch_history()
            (HISTORIES / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")
        histories: dict[str, WorkflowHistory] = {}
        if not names or set(names) & set(SESSION_GOLDENS):
            histories.update(await record_session_goldens(env.client, "golden"))
        if not names or set(names) & set(BUS_GOLDENS):
            histories.update(await record_bus_goldens(env.client))
        if histories:
            for name, history in histories.items():
                (HISTORIES / f"{name}.json").write_text(history.to_json())
                print(f"recorded {name}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1:]))
