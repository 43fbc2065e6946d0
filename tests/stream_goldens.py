"""The golden history of a streamed run: a route hand-off to an agent that streams tokens and is
retried once, with a watcher polling the stream throughout (so the history holds the stream's
publish signals and poll updates). Recorded by ``python -m tests.record_histories``."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHistory

from agentflow.client.runner import Runner
from tests.conftest import flow_config, running_worker

STREAM_GOLDENS = ("streamed",)


async def record_stream_goldens(client: Client) -> dict[str, WorkflowHistory]:
    config = flow_config("route", {"a": "tests.agents:router", "b": "tests.stream_agents:talker"})
    async with running_worker(client, config) as queue:
        handle = await Runner(config, client, queue).start(
            {"routes": {"a": "b"}, "fail_first": True}, target="a", workflow_id="golden-streamed"
        )
        items = [streamed.item.kind async for streamed in handle.stream()]
        await handle.result()
        assert "retrying" in items and "tokens" in items and "handoff" in items, items
        return {"streamed": await handle.handle.fetch_history()}
