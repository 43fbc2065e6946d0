"""The golden history of a session whose events run their local agents as batches
(workflows/_batch.py), kept in tests/histories/batches/: an event that completes, one whose
second agent fails fatally mid-batch and goes to its error handler, and one whose second agent
fails mid-batch, is retried after its backoff and then dead-lettered. Recorded by
``python -m tests.record_histories local_batch``; replayed by tests/test_local_batch.py."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client, WorkflowHistory

from agentflow.client.runner import Runner
from agentflow.config import FlowConfig
from agentflow.names import session_workflow_id
from tests.conftest import flow_config, running_worker

BATCH_HISTORIES = Path(__file__).parent / "histories" / "batches"
BATCH_GOLDENS = ("local_batch",)
STEP = "tests.runtime_agents:step"


def batch_session_config() -> FlowConfig:
    return flow_config(
        "sequential",
        {"a": STEP, "b": STEP, "c": STEP, "fixer": "tests.runtime_agents:error_handler"},
        sequential_agents=["a", "b", "c"],
        local_agents=True,
        retry_attempts=1,
        tables={"error_routing": {"category_handlers": {"fatal": "fixer"}}},
    )


async def record_batch_goldens(
    client: Client, session: str = "golden-batch"
) -> dict[str, WorkflowHistory]:
    config = batch_session_config()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        for n, data in enumerate([{}, {"fail": "b"}, {"fail_retryable": "b"}]):
            handle = await runner.emit({"n": n, **data}, session_id=session, event_id=f"e{n}")
            await handle.outcome()
        history = await client.get_workflow_handle(
            session_workflow_id(config.name, session)
        ).fetch_history()
    # The key is the file's path under tests/histories/.
    return {"batches/local_batch": history}
