"""``Runner(..., eager_start=True)``: the first workflow task goes straight to this process."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agentflow.client.runner import Runner
from tests.conftest import flow_config, running_worker


async def test_eager_start_runs_on_the_in_process_worker(client: Client) -> None:
    config = flow_config("sequential", {"a": "tests.agents:append"}, sequential_agents=["a"])
    async with running_worker(client, config) as task_queue:
        handle = await Runner(config, client, task_queue, eager_start=True).start({"trail": []})
        result = await handle.result()
        history = await handle.handle.fetch_history()
    assert result.state.data["trail"] == ["a"]
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.eager_execution_accepted
    assert history.events[1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
