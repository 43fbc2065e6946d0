"""RAG in agents (issue 20): a memory-enabled agent recalls the knowledge base and its
session's earlier turns before it runs, in an activity of its own (recorded: the trace shows
the ids and scores, a replay never searches again); a handler finds them in
``state.context["memory"]``, an LLM agent in its prompt with their sources; a store that is
down is retried under Temporal's policy, then the event is dead-lettered with the reason."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from agentflow import memory
from agentflow.client.sessions import close_session
from agentflow.config import FlowConfig, parse_config
from agentflow.inspect.trace import trace
from agentflow.names import MEMORY_REMEMBER, MEMORY_RETRIEVE
from agentflow.worker import ALL_WORKFLOWS
from tests.conftest import REPO, flow_runner
from tests.llm_server import FakeLLM, running_fake
from tests.memory_goldens import MEMORY_HISTORIES

REFUNDS = "Refunds are paid back to the card within five working days of the return."
SHIPPING = "Parcels ship from Rotterdam every weekday; express parcels leave at noon."


@pytest.fixture(params=["sqlite", "pgvector"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The [agent_memory] keys of a store of each kind (pgvector: a real PostgreSQL)."""
    if request.param == "sqlite":
        return {"provider": "sqlite", "connection": str(tmp_path / "memory.db")}
    url = str(request.getfixturevalue("postgres_url"))
    table = {"table_name": f"rag_{uuid.uuid4().hex[:10]}"}
    return {"provider": "pgvector", "connection": url, "pgvector": table}


def memory_flow(
    tmp_path: Path, agents: dict[str, Any], store: dict[str, Any] | None = None, **tables: Any
) -> FlowConfig:
    store = store or {"provider": "sqlite", "connection": str(tmp_path / "memory.db")}
    raw: dict[str, Any] = {
        "agent_flow": {"name": f"mem-{uuid.uuid4().hex[:6]}"},
        "orchestration": {"mode": "sequential", "sequential_agents": list(agents),
                          "retry": {"initial_interval_seconds": 0.05}, "timeout_seconds": 60},
        "agents": agents,
        "agent_memory": {**store, "dimensions": 256, "embedding": {"provider": "dummy"},
                         "chunk_size": 200, "chunk_overlap": 20},
        **tables,
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


async def know(config: FlowConfig, *texts: tuple[str, str]) -> None:
    """Put ``(source, text)`` pairs in the knowledge base, as ``memory ingest`` would."""
    async with memory.open_memory(config) as (settings, store, embedder):
        for source, text in texts:
            await memory.store_text(settings, store, embedder, source=source, text=text)


async def test_a_handler_agent_finds_what_it_recalled_in_its_context(
    client: Client, tmp_path: Path, store: dict[str, Any]
) -> None:
    config = memory_flow(tmp_path, {"lookup": {"handler": "tests.memory_agents:lookup",
                                               "memory_enabled": True}}, store)  # fmt: skip
    await know(config, ("docs/refunds.md", REFUNDS), ("docs/shipping.md", SHIPPING))
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"message": "when are refunds paid back to the card?"})
        result = await handle.result()
    assert result.state.data["recalled"][0] == ["docs/refunds.md", REFUNDS]
    assert "memory" not in result.state.context  # recalled for the call, not kept
    lines = [e for e in await trace(client, handle.workflow_id) if e.action == "memory"]
    [line] = lines
    assert line.agent == "lookup"
    assert re.fullmatch(r"recalled \d: [0-9a-f]{8} 0\.\d\d docs/refunds\.md#0(, .*)?", line.detail)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


async def test_an_llm_agent_gets_the_chunks_in_its_prompt_with_their_sources(
    client: Client, tmp_path: Path, fake: FakeLLM
) -> None:
    fake.reset()
    config = memory_flow(
        tmp_path,
        {"answer": {"system_prompt": "Answer from memory.", "memory_enabled": True}},
        llm={"provider": "ollama", "model": "gemma3:1b"},
        providers={"ollama": {"base_url": fake.url("ollama")}},
    )
    assert config.agent_memory is not None
    config.agent_memory.max_results = 1
    await know(config, ("docs/refunds.md", REFUNDS), ("docs/shipping.md", SHIPPING))
    async with flow_runner(client, config) as runner:
        result = await runner.run({"message": "Which city do parcels ship from?"})
    assert result.status == "completed"
    [request] = fake.requests
    prompt = request["messages"][-1]["content"]
    assert prompt == (
        "Relevant memory (cite the sources you use):\n"
        f"[1] (source: docs/shipping.md#0) {SHIPPING}\n\n"
        "Input:\nWhich city do parcels ship from?"
    )


async def test_a_session_recalls_its_earlier_turns_and_keeps_them_after_closing(
    client: Client, tmp_path: Path, store: dict[str, Any]
) -> None:
    config = memory_flow(tmp_path, {"note": {"handler": "tests.memory_agents:note",
                                             "memory_enabled": True}}, store)  # fmt: skip
    session = f"s-{uuid.uuid4().hex[:6]}"
    async with flow_runner(client, config) as runner:
        first = await (await runner.emit({"message": "my locker code is 4471"},
                                         session_id=session)).result()  # fmt: skip
        assert first.state.data["turns"] == []
        second = await (await runner.emit({"message": "what was my locker code?"},
                                          session_id=session)).result()  # fmt: skip
        await close_session(await runner.client(), config.name, session, by="test")
    turns = second.state.data["turns"]
    assert any("4471" in turn for turn in turns), turns
    # Another session recalls none of it; the memory outlives the session until forgotten.
    found = await memory.search(config, "locker code", session_id=session)
    assert any("4471" in hit.text for hit in found)
    assert await memory.search(config, "locker code", session_id="other") == []
    assert await memory.forget(config, session_id=session) > 0
    assert await memory.search(config, "locker code", session_id=session) == []


async def test_a_store_that_is_down_is_retried_then_the_event_is_dead_lettered(
    client: Client, tmp_path: Path
) -> None:
    config = memory_flow(
        tmp_path,
        {"lookup": {"handler": "tests.memory_agents:lookup", "memory_enabled": True,
                    "retry_policy": {"max_retries": 2, "base_delay_ms": 50}}},
    )  # fmt: skip
    assert config.agent_memory is not None
    config.agent_memory.provider = "pgvector"
    config.agent_memory.pgvector.connection = "postgresql://agentflow@127.0.0.1:9/none"
    session = f"s-{uuid.uuid4().hex[:6]}"
    async with flow_runner(client, config) as runner:
        outcome = await (await runner.emit({"message": "refunds?"}, session_id=session)).outcome()
    assert outcome.status == "dead_lettered", outcome
    assert "agent 'lookup' could not recall" in (outcome.error or "")
    assert "127.0.0.1:9" in (outcome.error or "")


async def test_golden_recall_history_replays() -> None:
    """A memory-enabled agent's recall and remember replay from history: no search again."""
    path = MEMORY_HISTORIES / "memory_recall.json"
    history = WorkflowHistory.from_json("golden-memory-recall", json.loads(path.read_text()))
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    assert (await replayer.replay_workflow(history)).replay_failure is None
    kinds = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert kinds == [MEMORY_RETRIEVE, "agent:a", MEMORY_REMEMBER]
