"""LLM agents with tools: Python tools and an MCP server's, each call its own ``run_tool``
activity between model steps (workflows/_llm_loop.py), and durable: a worker killed after a
tool call completed runs neither that call nor the model request before it again."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, load_config, parse_config
from agentflow.inspect.trace.read import trace
from agentflow.models.flow import FlowFailedError
from agentflow.worker.serve import serving
from agentflow.workflows import _llm_loop
from tests._worker_process import WorkerProcess
from tests.conftest import REPO, flow_runner
from tests.llm_server import Calls, FakeLLM, Text, running_fake
from tests.llm_tools import MARKER_ENV

MCP_SERVER = REPO / "tests" / "mcp_server.py"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


@pytest.fixture
def llm_server(fake: FakeLLM) -> FakeLLM:
    fake.reset()
    return fake


def tool_flow(base_url: str, agent: dict[str, Any], **tables: Any) -> FlowConfig:
    raw = {
        "agent_flow": {"name": f"llm-tools-{uuid.uuid4().hex[:6]}"},
        "llm": {"provider": "ollama", "model": "gemma3:1b", "base_url": base_url},
        "orchestration": {"mode": "sequential", "sequential_agents": ["solver"],
                          "timeout_seconds": 120, "retry_attempts": 2,
                          "retry": {"initial_interval_seconds": 0.05}},
        "agents": {"solver": {"system_prompt": "Solve.", **agent}},
        **tables,
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


def _mcp_server_processes() -> set[int]:
    """The pids of this process's children that run tests/mcp_server.py over stdio."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        if parent == os.getpid() and str(MCP_SERVER).encode() in argv and b"stdio" in argv:
            found.add(int(stat.parent.name))
    return found


async def _gone(pids: set[int]) -> None:
    while pids & _mcp_server_processes():
        await asyncio.sleep(0.05)


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def scheduled(client: Client, workflow_id: str) -> list[tuple[str, str]]:
    """(activity type, activity id) of every activity the run scheduled, in order."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [
        (e.activity_task_scheduled_event_attributes.activity_type.name,
         e.activity_task_scheduled_event_attributes.activity_id)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]  # fmt: skip


async def test_python_and_mcp_tools_run_as_activities_between_model_steps(
    client: Client, llm_server: FakeLLM
) -> None:
    mcp = {"servers": [{"name": "facts", "type": "stdio",
                        "command": f"{sys.executable} {MCP_SERVER} stdio"}]}  # fmt: skip
    agent = {"tools": ["tests.llm_tools:add", "tests.llm_tools:shout"], "mcp_servers": ["facts"]}
    config = tool_flow(llm_server.url("ollama"), agent, mcp=mcp)
    llm_server.script = [
        Calls([("add", {"a": 2, "b": 3}), ("lookup", {"topic": "temporal"})]),
        Calls([("shout", {"text": ["not", "text"]})]),  # arguments that do not fit
        Text("done: 5"),
    ]
    # The worker as `agentflow worker` runs it: its stdio MCP server exits when it stops.
    queue = f"llm-tools-{uuid.uuid4().hex[:8]}"
    async with serving(client, [(config, REPO)], task_queue=queue):
        handle = await Runner(config, client, queue).start(
            {"message": "add 2 and 3, look up temporal"}
        )
        result = await handle.result()
        servers = _mcp_server_processes()
        assert servers, "the stdio MCP server is not running"
    await asyncio.wait_for(_gone(servers), 30)
    assert result.state.data["solver"] == "done: 5"

    first, second, third = llm_server.requests
    offered = {tool["function"]["name"] for tool in first["tools"]}
    assert {"add", "shout", "lookup"} <= offered
    assert tool_messages(first) == []
    five, fact = tool_messages(second)
    assert five == "5" and "Temporal records every step" in fact
    # A call whose arguments do not fit the tool goes back to the model, which may retry.
    assert "text" in tool_messages(third)[-1] and "valid string" in tool_messages(third)[-1]

    assert await scheduled(client, handle.workflow_id) == [
        ("agent:solver", "1-solver"),
        ("run_tool", "1-solver.1.1-add"),
        ("run_tool", "1-solver.1.2-lookup"),
        ("agent:solver", "1-solver.1"),
        ("run_tool", "1-solver.2.1-shout"),
        ("agent:solver", "1-solver.2"),
    ]
    usage = result.results[0].usage
    assert usage is not None
    assert (usage.requests, usage.tool_calls, usage.input_tokens, usage.output_tokens) == (
        3, 3, 15, 9
    )  # fmt: skip
    assert result.usage == usage

    # The trace shows one agent call: started once, its tool rounds, completed once.
    lines = [(e.agent, e.action, e.detail) for e in await trace(client, handle.workflow_id)
             if e.agent == "solver"]  # fmt: skip
    assert lines[0][:2] == ("solver", "started") and lines[-1][:2] == ("solver", "completed")
    assert [detail for _, action, detail in lines if action == "tool"] == [
        "model step 1 asked for add, lookup",
        "add (tests.llm_tools:add) called",
        "lookup (facts) called",
        "add returned 5",
        "lookup returned Temporal records every step of a workflow in its history.",
        "model step 2 asked for shout",
        "shout (tests.llm_tools:shout) called",
        "shout: arguments did not fit the tool; the model is told why",
    ]
    assert [action for _, action, _ in lines].count("started") == 1


async def test_a_model_that_never_stops_calling_tools_fails_naming_the_agent(
    client: Client, llm_server: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_llm_loop, "MAX_MODEL_STEPS", 3)  # 10 in earnest; 3 keeps it short
    config = tool_flow(llm_server.url("ollama"), {"tools": ["tests.llm_tools:add"]})
    llm_server.script = [Calls([("add", {"a": 1, "b": 1})])] * 3  # never an answer
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as info:
            await runner.run({"message": "loop"})
    result = info.value.result.results[-1]
    assert (result.agent, result.error_type) == ("solver", "TooManyToolSteps")
    assert "agent 'solver' still asked for tools after 3 model steps" in (result.error or "")
    assert result.usage is not None and (result.usage.requests, result.usage.tool_calls) == (3, 2)


def _write_flow(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "agentflow.toml"
    path.write_text(f"""
[agent_flow]
name = "llm-crash-{uuid.uuid4().hex[:6]}"

[llm]
provider = "ollama"
model = "gemma3:1b"
base_url = "{base_url}"

[orchestration]
mode = "sequential"
sequential_agents = ["solver"]
timeout_seconds = 120

[agents.solver]
system_prompt = "Note things."
tools = ["tests.llm_tools:record"]
# Heartbeats: a killed worker's model step is retried after 8 s.
timeout_seconds = 8
""")
    return path


async def test_worker_killed_after_a_tool_call_does_not_repeat_it(
    client: Client, llm_server: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "notes.txt"
    monkeypatch.setenv(MARKER_ENV, str(marker))  # the worker process inherits it
    path = _write_flow(tmp_path, llm_server.url("ollama"))
    config = load_config(path)
    queue = f"llm-crash-{uuid.uuid4().hex[:8]}"
    address = client.service_client.config.target_host
    llm_server.script = [Calls([("record", {"note": "once"})])]
    # The model request after the tool call waits: the worker dies while it is in flight.
    llm_server.hold = lambda body: any(m["role"] == "tool" for m in body["messages"])
    log = tmp_path / "worker.log"
    first = WorkerProcess(path, queue, address, log).start()
    try:
        handle = await Runner(config, client, queue).start({"message": "note once"})
        assert await asyncio.to_thread(llm_server.holding.wait, 60), "no second model step"
        assert marker.read_text().splitlines() == ["once"]  # the tool ran, and completed
        first.kill()
    finally:
        first.kill()
    llm_server.hold = None
    llm_server.release.set()
    with WorkerProcess(path, queue, address, log):
        result = await handle.result()
    assert result.state.data["solver"] == "Note things.| noted once"  # the tool's result
    # Counters: the tool ran once; the model request before it was made once; only the
    # step that was in flight when the worker died was asked again.
    assert marker.read_text().splitlines() == ["once"]
    steps = [bool(tool_messages(request)) for request in llm_server.requests]
    assert steps.count(False) == 1 and steps.count(True) == 2
    usage = result.results[0].usage
    assert usage is not None and (usage.requests, usage.tool_calls) == (2, 1)
