"""``stream = false`` on an LLM agent (activities/llm.py): its model requests are made whole,
not streamed, with the same reply, usage, tool-call turns and output validation; watchers of
the run see the agent start and complete but no tokens. Refused on a handler agent."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow.cli.main import main
from agentflow.config import FlowConfig, parse_config
from agentflow.models.flow import FlowResult
from agentflow.models.stream import StreamItem
from tests.conftest import REPO, flow_runner
from tests.llm_server import Calls, FakeLLM, Text, running_fake

WAIT = 60.0
SCHEMA = {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


def flow(fake: FakeLLM, stream: bool) -> FlowConfig:
    """A solver that calls a tool, then a judge whose reply must fit SCHEMA; ``stream`` on
    both (unset when true: the default)."""
    switch: dict[str, Any] = {} if stream else {"stream": False}
    return parse_config({
        "agent_flow": {"name": f"llm-no-stream-{uuid.uuid4().hex[:6]}"},
        "llm": {"provider": "ollama", "model": "gemma3:1b", "base_url": fake.url("ollama")},
        "orchestration": {"mode": "sequential", "sequential_agents": ["solver", "judge"],
                          "timeout_seconds": 60},
        "agents": {"solver": {"system_prompt": "Solve.", "tools": ["tests.llm_tools:add"],
                              **switch},
                   "judge": {"system_prompt": "Judge.", "output_schema": SCHEMA, **switch}},
    }, base_dir=REPO, check_handlers=True)  # fmt: skip


async def run(
    client: Client, fake: FakeLLM, stream: bool
) -> tuple[FlowResult, list[StreamItem], list[dict[str, Any]]]:
    """One run: the solver asks for add(2, 3), then answers; the judge's first reply does not
    fit SCHEMA (sent back with the reason), its second does."""
    fake.reset()
    fake.script = [
        Calls([("add", {"a": 2, "b": 3})]),
        Text("2 + 3 = 5"),
        Calls([("final_result", {"sum": "five"})]),
        Calls([("final_result", {"sum": 5})]),
    ]
    async with flow_runner(client, flow(fake, stream)) as runner:
        handle = await runner.start({"message": "add 2 and 3"})
        result = await asyncio.wait_for(handle.result(), WAIT)
        items = [streamed.item async for streamed in handle.stream()]
    return result, items, list(fake.requests)


def conversations(requests: list[dict[str, Any]]) -> list[str]:
    """What each request sent the model, the fake's tool call ids (a counter) left out."""
    return [re.sub(r"call_\d+", "call", json.dumps(body["messages"])) for body in requests]


async def test_a_plain_agent_gets_the_same_result_from_whole_requests(
    client: Client, fake: FakeLLM
) -> None:
    streamed, streamed_items, streamed_requests = await run(client, fake, stream=True)
    plain, plain_items, plain_requests = await run(client, fake, stream=False)

    # The same replies, tool call, validation retry and usage either way.
    assert plain.state.data == streamed.state.data
    assert plain.state.data["solver"] == "2 + 3 = 5"
    assert plain.state.data["judge"] == {"sum": 5}
    assert plain.usage == streamed.usage
    assert plain.usage is not None
    assert plain.usage.tool_calls == 1 and plain.usage.input_tokens > 0
    usages = [(r.agent, r.usage) for r in plain.results]
    assert usages == [(r.agent, r.usage) for r in streamed.results]
    # The same conversations went to the model: a whole request, or a streamed one.
    # solver: the tool call, the answer; judge: the reply that does not fit, then the one that does
    assert len(plain_requests) == len(streamed_requests) == 4
    assert "sum" in str(plain_requests[3]["messages"][-1])  # the reason went back
    assert all(body.get("stream") is True for body in streamed_requests)
    assert not any(body.get("stream") for body in plain_requests)
    assert conversations(plain_requests) == conversations(streamed_requests)

    # Watchers see the plain agents start and complete, but no tokens.
    def kinds(items: list[StreamItem]) -> list[str]:
        return [f"{item.kind} {item.agent or ''}".strip() for item in items]

    assert kinds(plain_items) == ["flow_started", "started solver", "completed solver",
                                  "started judge", "completed judge",
                                  "flow_finished"]  # fmt: skip
    assert "tokens solver" in kinds(streamed_items)  # the streamed solver's text


def test_stream_false_on_a_handler_agent_is_one_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "flow.toml"
    path.write_text(
        textwrap.dedent("""\
            [agent_flow]
            name = "handler-stream"

            [orchestration]
            mode = "sequential"
            sequential_agents = ["a"]

            [agents.a]
            handler = "tests.agents:append"
            stream = false
            """),
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"agentflow: error: {path}: agents.a.stream: only LLM agents (no handler, a "
        "system_prompt) use it; this agent runs its handler (remove stream = false)"
    ]
    path.write_text(path.read_text().replace("stream = false", "stream = true"))
    assert main(["validate", str(path)]) == 0  # true is every agent's default
