"""examples/llm end to end: the researcher's model (the local fake, tests/llm_server.py) asks
for a Python tool and then for two calls of an MCP tool of the example's own stdio server;
each call is its own activity, and the run completes with the published report."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.client import Client

from agentflow.activities.mcp import tools as mcp
from agentflow.client.runner import Runner
from agentflow.config import parse_config
from agentflow.errors import ConfigError
from agentflow.worker.serve import build_worker
from tests.conftest import REPO
from tests.llm_server import Calls, FakeLLM, Text, running_fake

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXAMPLE = REPO / "examples" / "llm"
QUESTION = "How does Temporal make durable agents?"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


async def test_research_flow_calls_a_python_tool_and_an_mcp_tool(
    client: Client, fake: FakeLLM
) -> None:
    raw = tomllib.loads((EXAMPLE / "agentflow.toml").read_text())
    raw["providers"]["ollama"]["base_url"] = fake.url("ollama")  # the fake, not a real Ollama
    config = parse_config(
        raw, source=str(EXAMPLE / "agentflow.toml"), base_dir=EXAMPLE, check_handlers=True
    )
    fake.script = [
        Calls([("keywords", {"text": QUESTION})]),
        Calls([("search_notes", {"topic": "temporal"}), ("search_notes", {"topic": "durable"})]),
        Text(f"{QUESTION}\nTemporal replays history after a crash."),
        Text("Temporal records every step, so agents resume where they stopped."),
    ]
    queue = f"example-llm-{uuid.uuid4().hex[:8]}"
    try:
        async with build_worker(client, [(config, EXAMPLE)], task_queue=queue):
            runner = Runner(config, client, queue)
            handle = await runner.start({"question": QUESTION})
            result = await handle.result()
    finally:
        await mcp.close_servers()  # the library server this worker started

    assert result.status == "completed"
    assert result.state.data["report"] == {
        "question": QUESTION,
        "notes": f"{QUESTION}\nTemporal replays history after a crash.",
        "answer": "Temporal records every step, so agents resume where they stopped.",
    }
    # The model saw each tool's result: the Python tool's keywords, then the MCP server's notes.
    first, second, third, writer = fake.requests
    assert [tool["function"]["name"] for tool in first["tools"]] == [
        "keywords",
        "search_notes",
        "topics",
    ]
    assert json.loads(second["messages"][-1]["content"]) == ["temporal", "make", "durable"]
    notes = [json.loads(m["content"]) for m in third["messages"] if m["role"] == "tool"]
    assert notes[-2][0].startswith("Temporal records every step of a workflow")
    assert notes[-1] == [
        "Durable execution means a program's progress survives process and machine failures."
    ]
    assert "tools" not in writer  # the writer has no tools: one plain model request

    # Every model request and every tool call was its own activity.
    history = await handle.handle.fetch_history()
    kinds = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert kinds.count("run_tool") == 3
    assert result.usage is not None and result.usage.requests == 4


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"tools": ["no_such_module_xyz:search"]},
         "agents.researcher.tools[0]: cannot import module 'no_such_module_xyz' for tool"),
        ({"tools": ["research_agents:nope"]},
         "agents.researcher.tools[0]: module 'research_agents' has no attribute 'nope'"),
        ({"mcp_servers": ["web"]},
         "agents.researcher.mcp_servers[0]: MCP server 'web' is not defined in [[mcp.servers]]"),
        ({"server": {"name": "library", "type": "tcp", "host": "localhost", "port": 8811}},
         "'tcp' is not supported yet; use stdio"),
    ],
)  # fmt: skip
def test_the_example_with_a_bad_tool_says_what_is_wrong(
    change: dict[str, Any], expected: str
) -> None:
    raw = tomllib.loads((EXAMPLE / "agentflow.toml").read_text())
    if "server" in change:
        raw["mcp"]["servers"] = [change.pop("server")]
    raw["agents"]["researcher"].update(change)
    with pytest.raises(ConfigError) as failed:
        parse_config(raw, source="agentflow.toml", base_dir=EXAMPLE, check_handlers=True)
    assert expected in str(failed.value)
    assert str(failed.value).startswith("agentflow.toml: ") and "\n" not in str(failed.value)
