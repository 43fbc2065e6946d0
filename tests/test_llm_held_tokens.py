"""An LLM reply that ends before its first token batch is due goes to the run's live stream with
the activity's result (activities/tokens.py, ``hold``): watchers see the same text, attempt and
order as a signalled batch, and the run records no signal and no workflow task for it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agentflow.config import parse_config
from tests.conftest import REPO, flow_runner
from tests.llm_server import Calls, FakeLLM, running_fake

WAIT = 60.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


async def test_a_quick_reply_streams_with_its_result_and_no_signal(
    client: Client, fake: FakeLLM
) -> None:
    config = parse_config({
        "agent_flow": {"name": f"llm-held-{uuid.uuid4().hex[:6]}"},
        "llm": {"provider": "ollama", "model": "gemma3:1b", "base_url": fake.url("ollama")},
        "orchestration": {"mode": "sequential", "sequential_agents": ["solver", "writer"],
                          "timeout_seconds": 60},
        "agents": {"solver": {"system_prompt": "Solve.", "tools": ["tests.llm_tools:add"]},
                   "writer": {"system_prompt": "Write."}},
    }, base_dir=REPO, check_handlers=True)  # fmt: skip
    fake.script = [Calls([("add", {"a": 2, "b": 3})])]  # then the echo: "<prompt>| <message>"
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"message": "add 2 and 3"})
        result = await asyncio.wait_for(handle.result(), WAIT)
        items = [streamed.item async for streamed in handle.stream()]
        history = await handle.handle.fetch_history()

    solver, writer = result.state.data["solver"], result.state.data["writer"]
    assert solver.startswith("Solve.|") and writer == f"Write.| {solver}"
    tokens = [(i.agent, i.text, i.attempt) for i in items if i.kind == "tokens"]
    assert tokens == [("solver", solver, 1), ("writer", writer, 1)]
    kinds = [f"{i.kind} {i.agent or ''}".strip() for i in items]
    assert kinds == ["flow_started", "started solver", "tokens solver", "completed solver",
                     "started writer", "tokens writer", "completed writer",
                     "flow_finished"]  # fmt: skip
    assert {i.event_id for i in items} == {items[0].event_id}
    types = [event.event_type for event in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED not in types
    assert types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) == 4  # 3 requests, 1 tool
