"""The session and dead-letter workflows' golden histories: one session run that completes an
event, hands one to its error handler, dead-letters one, ignores a repeat and continues as new;
and that dead letter, redriven. Recorded by ``python -m tests.record_histories``."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHistory

from agentflow.client.runner import Runner
from agentflow.config import FlowConfig
from agentflow.models.session import Redrive
from agentflow.names import dead_letter_workflow_id, session_workflow_id
from tests.conftest import flow_config, running_worker

SESSION_GOLDENS = ("session", "dead_letter")
STEP = "tests.runtime_agents:step"


def golden_session_config() -> FlowConfig:
    return flow_config(
        "sequential",
        {"a": STEP, "b": STEP, "fixer": "tests.runtime_agents:error_handler"},
        sequential_agents=["a", "b"],
        retry_attempts=0,
        tables={
            "hooks": {"before_event_handling": ["tests.runtime_agents:tag_event"]},
            "error_routing": {"category_handlers": {"fatal": "fixer"}},
            "sessions": {"events_per_run": 4},
        },
    )


async def record_session_goldens(client: Client, session: str) -> dict[str, WorkflowHistory]:
    config = golden_session_config()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        for n, data in enumerate([{}, {"fail": "b"}, {"fail_retryable": "a"}, {}]):
            handle = await runner.emit({"n": n, **data}, session_id=session, event_id=f"e{n}")
            await handle.outcome()
            if n == 2:  # the same event again: counted as a duplicate, not processed
                await runner.emit({"n": n}, session_id=session, event_id=f"e{n}", wait=True)
        letter = client.get_workflow_handle(dead_letter_workflow_id(config.name, session, "e2"))
        await letter.execute_update("redriven", Redrive(event_id="e2.r1", by="golden"))
        await letter.result()
        sessions = client.get_workflow_handle(session_workflow_id(config.name, session))
        first_run = (await sessions.describe()).raw_description.workflow_execution_info
        histories = {
            "session": await client.get_workflow_handle(
                sessions.id, run_id=first_run.first_run_id or None
            ).fetch_history(),
            "dead_letter": await letter.fetch_history(),
        }
    return histories
