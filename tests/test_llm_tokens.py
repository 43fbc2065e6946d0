"""An LLM agent's tokens on the run's live stream: its model streams the reply (tests/llm_server.py
speaks the APIs' Server-Sent Events), watchers see the text while the model is still writing it
and before the agent completes, and a reply broken off mid-stream and retried shows once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import pytest
from pydantic_ai.exceptions import ModelConnectionError, TransportPhase
from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from agentflow.activities.llm_models import as_failure
from agentflow.client.runner import FlowHandle
from agentflow.config import parse_config
from agentflow.config.llm import ResolvedLLM
from agentflow.models.stream import TOPICS, Streamed, StreamItem
from tests.conftest import REPO, flow_runner
from tests.llm_server import FakeLLM, Text, running_fake

WAIT = 60.0
REPLY = "Temporal keeps every step of the run in its history."
RETRIED = "A retried reply is shown to watchers once."


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


def _tokens(items: list[StreamItem], agent: str) -> str:
    return "".join(i.text or "" for i in items if i.kind == "tokens" and i.agent == agent)


async def _until(check: Callable[[], bool]) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), WAIT)


async def _watch(handle: FlowHandle, seen: list[Streamed]) -> None:
    async for streamed in handle.stream():
        seen.append(streamed)


async def test_llm_tokens_stream_live_and_a_retried_reply_shows_once(
    client: Client, fake: FakeLLM
) -> None:
    raw_config = {
        "agent_flow": {"name": f"llm-tokens-{uuid.uuid4().hex[:6]}"},
        "llm": {"provider": "ollama", "model": "gemma3:1b", "base_url": fake.url("ollama")},
        "orchestration": {"mode": "sequential", "sequential_agents": ["writer", "noter"],
                          "timeout_seconds": 60, "retry_attempts": 2,
                          "retry": {"initial_interval_seconds": 0.05}},
        # A local agent streams nothing (agentflow/tokens.py says why); its reply arrives.
        "agents": {"writer": {"system_prompt": "Write."},
                   "noter": {"system_prompt": "Note.", "local": True}},
    }  # fmt: skip
    config = parse_config(raw_config, base_dir=REPO, check_handlers=True)
    first_words = "Temporal keeps every"
    async with flow_runner(client, config) as runner:
        # The model sends three words, then waits until a watcher has seen them.
        fake.script = [Text(REPLY, hold_after=3)]
        handle = await runner.start({"message": "hi"})
        seen: list[Streamed] = []
        watcher = asyncio.ensure_future(_watch(handle, seen))
        await _until(lambda: _tokens([s.item for s in seen], "writer") == first_words)
        assert fake.holding.is_set() and not any(s.item.kind == "completed" for s in seen)
        fake.release.set()
        result = await asyncio.wait_for(handle.result(), WAIT)
        await asyncio.wait_for(watcher, WAIT)

        # A reply broken off after three words: Temporal retries the agent, which streams
        # the whole reply again.
        fake.reset()
        fake.script = [Text(RETRIED, drop_after=3), Text(RETRIED)]
        again = await runner.start({"message": "once"})
        retried = await asyncio.wait_for(again.result(), WAIT)
        shown = [s.item async for s in again.stream()]
        reader = WorkflowStreamClient.create(client, again.workflow_id)
        raw = [i.data async for i in reader.subscribe(list(TOPICS), result_type=StreamItem)]
        history = await client.get_workflow_handle(again.workflow_id).fetch_history()

    # The retry's ActivityTaskStarted shows why attempt 1 failed, not "Failure exceeds size
    # limit." (a failure carrying the transport's exception chain is over Temporal's 4 KB).
    [retry_started] = [e.activity_task_started_event_attributes for e in history.events
                       if e.HasField("activity_task_started_event_attributes")
                       and e.activity_task_started_event_attributes.attempt == 2]  # fmt: skip
    last = retry_started.last_failure
    assert last.message.startswith(
        "agent 'writer': ollama lost the connection while reading "
        f"the reply from {fake.url('ollama')}"
    ), last.message
    assert last.cause.message and not last.cause.cause.message, last
    assert last.ByteSize() < 4096

    items = [s.item for s in seen]
    kinds = [f"{i.kind} {i.agent or ''}".strip() for i in items if i.kind != "tokens"]
    assert kinds == ["flow_started", "started writer", "completed writer", "started noter",
                     "completed noter", "flow_finished"]  # fmt: skip
    assert result.state.data["writer"] == REPLY and _tokens(items, "writer") == REPLY
    completed = next(n for n, i in enumerate(items) if i.kind == "completed")
    assert all(n < completed for n, i in enumerate(items) if i.kind == "tokens")
    assert {(i.agent, i.attempt, i.event_id) for i in items if i.kind == "tokens"} == {
        ("writer", 1, items[0].event_id)
    }
    assert result.state.data["noter"] == f"Note.| {REPLY}" and _tokens(items, "noter") == ""

    assert [r.attempt for r in retried.results] == [2, 1]
    assert retried.state.data["writer"] == RETRIED
    assert _tokens(shown, "writer") == RETRIED  # the reader's view: once
    # The raw stream: the first attempt's three words, the retry marked, the whole reply again.
    attempts = [(i.kind, i.attempt) for i in raw if i.agent == "writer" and i.kind != "tokens"]
    assert attempts == [("started", None), ("retrying", 2), ("completed", 2)]
    words = [_tokens([i for i in raw if i.attempt == n], "writer") for n in (1, 2)]
    assert words == ["A retried reply", RETRIED]
    retry = next(n for n, i in enumerate(raw) if i.kind == "retrying")
    assert all(n > retry for n, i in enumerate(raw) if i.kind == "tokens" and i.attempt == 2)


@pytest.mark.parametrize(
    ("phase", "said"),
    [("connect", "cannot be reached at"), ("write", "lost the connection while sending the "
      "request to"), ("read", "lost the connection while reading the reply from"),
     (None, "lost its connection at")],
)  # fmt: skip
def test_a_broken_connection_says_where_it_broke(phase: TransportPhase | None, said: str) -> None:
    """A reply cut off mid-stream did reach the server: the failure must not say otherwise."""
    llm = ResolvedLLM(provider="ollama", kind="ollama", model="m", base_url="http://h:1/v1")
    error = ModelConnectionError("m", "Connection error.", phase=phase)
    failure = as_failure("writer", llm, error)
    assert failure is not None and failure.type == "LLMUnreachable" and not failure.non_retryable
    assert failure.message == f"agent 'writer': ollama {said} http://h:1/v1: Connection error."
