"""Record the golden histories in tests/histories/ (run after an intentional workflow change
that is guarded by ``workflow.patched``): ``.venv/bin/python -m tests.record_histories``.
Name flows to record only those (``… record_histories publish``), keeping the others as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from agentflow.client.runner import Runner
from agentflow.models.flow import FlowFailedError
from agentflow.worker.devserver_process import dev_server_args, temporal_binary
from tests.agent_type_goldens import AGENT_TYPE_GOLDENS, record_agent_type_goldens
from tests.approval_goldens import APPROVAL_GOLDENS, record_approval_goldens
from tests.batch_goldens import BATCH_GOLDENS, record_batch_goldens
from tests.batcher_goldens import BATCHER_GOLDENS, record_batcher_goldens
from tests.bus_goldens import BUS_GOLDENS, record_bus_goldens
from tests.conftest import running_worker
from tests.flows import sample_flows
from tests.llm_goldens import LLM_GOLDENS, record_llm_goldens
from tests.memory_goldens import MEMORY_GOLDENS, record_memory_goldens
from tests.nested_goldens import NESTED_GOLDENS, record_nested_goldens
from tests.pattern_goldens import PATTERN_GOLDENS, record_pattern_goldens
from tests.session_goldens import SESSION_GOLDENS, record_session_goldens
from tests.stream_goldens import STREAM_GOLDENS, record_stream_goldens

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
        if not names or set(names) & set(STREAM_GOLDENS):
            histories.update(await record_stream_goldens(env.client))
        if not names or set(names) & set(BATCH_GOLDENS):  # into histories/batches/
            histories.update(await record_batch_goldens(env.client))
        if not names or set(names) & set(BUS_GOLDENS):
            histories.update(await record_bus_goldens(env.client))
        if not names or set(names) & set(APPROVAL_GOLDENS):  # into histories/approvals/
            histories.update(await record_approval_goldens(env.client))
        if not names or set(names) & set(NESTED_GOLDENS):
            histories.update(await record_nested_goldens(env.client))
        if not names or set(names) & set(LLM_GOLDENS):
            histories.update(await record_llm_goldens(env.client))
        if not names or set(names) & set(AGENT_TYPE_GOLDENS):  # into histories/agent_types/
            histories.update(await record_agent_type_goldens(env.client))
        if not names or set(names) & set(MEMORY_GOLDENS):  # into histories/memory/
            histories.update(await record_memory_goldens(env.client))
        if not names or set(names) & {Path(g).name for g in BATCHER_GOLDENS}:  # batchers/
            with tempfile.TemporaryDirectory() as tmp:
                histories.update(await record_batcher_goldens(env.client, Path(tmp) / "log"))
        if not names or set(names) & {*PATTERN_GOLDENS, "patterns"}:  # histories/patterns/
            histories.update(await record_pattern_goldens(env.client))
        if histories:
            for name, history in histories.items():
                # Recorded with others of its group: kept (a name may be a subdirectory's).
                if names and name not in names and Path(name).name not in names:
                    continue
                (HISTORIES / f"{name}.json").write_text(history.to_json())
                print(f"recorded {name}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1:]))
