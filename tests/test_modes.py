"""Each orchestration mode's semantics against a real Temporal dev server."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from agentflow import FlowFailedError
from tests import agents
from tests.conftest import flow_config, flow_runner

APPEND = "tests.agents:append"


async def test_sequential_passes_each_output_to_the_next(client: Client) -> None:
    config = flow_config(
        "sequential",
        {"a": APPEND, "b": "tests.agents:async_append", "c": APPEND},
        sequential_agents=["a", "b", "c"],
    )
    async with flow_runner(client, config) as runner:
        result = await runner.run({"trail": [], "keep": 1}, metadata={"origin": "test"})
    assert result.status == "completed"
    assert result.state.data == {"trail": ["a", "b", "c"], "keep": 1}
    assert result.state.meta == {"origin": "test"}
    assert [r.agent for r in result.results] == ["a", "b", "c"]
    assert all(r.status == "completed" and r.attempt == 1 for r in result.results)
    assert result.results[0].changed_keys == ["trail"]


async def test_sequential_failure_names_agent_and_position(client: Client) -> None:
    config = flow_config(
        "sequential",
        {"a": APPEND, "b": "tests.agents:fatal", "c": APPEND},
        sequential_agents=["a", "b", "c"],
    )
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await runner.run({})
    result = raised.value.result
    assert result.state.data == {"trail": ["a"]}  # the state when it failed: after a
    assert "agent 'b' (step 2 of 3) failed" in str(raised.value)
    assert "the input can never be processed" in str(raised.value)
    assert [(r.agent, r.status) for r in result.results] == [("a", "completed"), ("b", "failed")]


async def test_none_keeps_state_and_meta_survives(client: Client) -> None:
    config = flow_config("sequential", {"n": "tests.agents:noop"}, sequential_agents=["n"])
    async with flow_runner(client, config) as runner:
        result = await runner.run({"x": 1}, session_id="s-1")
    assert result.state.data == {"x": 1}
    assert result.state.meta == {"session_id": "s-1"}
    assert result.results[0].changed_keys == []


async def test_collaborative_gives_every_agent_the_same_input_and_merges(client: Client) -> None:
    names = ["first", "second", "third"]
    config = flow_config(
        "collaborate",  # alias of collaborative
        {name: "tests.agents:set_shared" for name in names},
        collaborative_agents=names,
    )
    assert config.mode == "collaborative"
    async with flow_runner(client, config) as runner:
        result = await runner.run({"winner": "nobody"})
    data = result.state.data
    assert all(data[name] is True for name in names)
    assert data["winner"] == "third"  # merged in config order: the last listed agent wins
    assert [r.agent for r in result.results] == names


async def test_collaborative_respects_max_concurrency(client: Client) -> None:
    names = [f"g{i}" for i in range(6)]
    key = uuid.uuid4().hex
    config = flow_config(
        "collaborative",
        {name: "tests.agents:gauge" for name in names},
        collaborative_agents=names,
        max_concurrency=2,
    )
    async with flow_runner(client, config) as runner:
        result = await runner.run({"key": key, "sleep": 0.3})
    assert {result.state.data[name] for name in names} == {"done"}
    assert agents.PEAKS[key] == 2


async def test_collaborative_failure_threshold(client: Client) -> None:
    tables = {"ok1": APPEND, "ok2": APPEND, "ok3": APPEND, "bad": "tests.agents:fatal"}
    names = list(tables)
    tolerant = flow_config(
        "collaborative", tables, collaborative_agents=names, failure_threshold=0.25
    )
    strict = flow_config("collaborative", tables, collaborative_agents=names)
    async with flow_runner(client, tolerant) as runner:
        result = await runner.run({})
    assert result.status == "completed"
    assert [r.status for r in result.results] == ["completed"] * 3 + ["failed"]
    async with flow_runner(client, strict) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await runner.run({})
    assert "1 of 4 collaborative agents failed (failure_threshold = 0.0)" in str(raised.value)
    assert "bad:" in str(raised.value)


async def test_route_follows_handoffs_until_none(client: Client) -> None:
    config = flow_config(
        "route", {name: "tests.agents:router" for name in ("triage", "billing", "closer")}
    )
    routes = {"triage": "billing", "billing": "closer"}
    async with flow_runner(client, config) as runner:
        result = await runner.run({"routes": routes}, target="triage")
        default = await runner.run({"routes": {}})  # no target: the first enabled agent
    assert result.path == ["triage", "billing", "closer"]
    assert result.state.data["trail"] == ["triage", "billing", "closer"]
    assert "route" not in result.state.meta
    assert default.path == ["triage"]


async def test_route_cycle_fails_with_loop_detected(client: Client) -> None:
    config = flow_config("route", {"a": "tests.agents:router", "b": "tests.agents:router"},
                         max_hops=3)  # fmt: skip
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await runner.run({"routes": {"a": "b", "b": "a"}}, target="a")
    assert str(raised.value) == "loop detected: a → b → a → b → … (max_hops = 3)"
    assert raised.value.result.path == ["a", "b", "a", "b"]


async def test_route_to_unknown_agent_names_it(client: Client) -> None:
    config = flow_config("route", {"a": "tests.agents:router", "b": "tests.agents:router"})
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await runner.run({"routes": {"a": "ghost"}}, target="a")
    assert "agent 'a' routed to unknown agent 'ghost'" in str(raised.value)


async def test_loop_stops_on_loop_complete(client: Client) -> None:
    config = flow_config("loop", {"count": "tests.agents:counter"}, loop_agent="count",
                         max_iterations=50)  # fmt: skip
    async with flow_runner(client, config) as runner:
        result = await runner.run({"stop_at": 4})
    assert (result.iterations, result.stop_reason) == (4, "loop_complete")
    assert result.state.data["count"] == 4


async def test_loop_stops_at_max_iterations(client: Client) -> None:
    config = flow_config("loop", {"count": "tests.agents:counter"}, loop_agent="count",
                         max_iterations=3)  # fmt: skip
    async with flow_runner(client, config) as runner:
        result = await runner.run({})
    assert (result.iterations, result.stop_reason) == (3, "max_iterations")
    assert result.state.data == {"count": 3, "loop_complete": False}


async def test_mixed_runs_sequence_on_merged_state(client: Client) -> None:
    config = flow_config(
        "mixed",
        {"p": "tests.agents:set_shared", "q": "tests.agents:set_shared", "s": APPEND},
        collaborative_agents=["p", "q"],
        sequential_agents=["s"],
    )
    async with flow_runner(client, config) as runner:
        result = await runner.run({})
    assert result.state.data == {"p": True, "q": True, "winner": "q", "trail": ["s"]}
    assert [r.agent for r in result.results] == ["p", "q", "s"]


async def test_a_megabyte_of_input_travels_once(client: Client) -> None:
    # 1 MB in the event would be 2 MB per agent call if it rode in both the event and the
    # state; Temporal rejects payloads over 2 MB, so the data travels in the state only.
    names = ["a", "b", "c", "d", "e"]
    config = flow_config(
        "sequential", {n: "tests.agents:sizes" for n in names}, sequential_agents=names
    )
    async with flow_runner(client, config) as runner:
        result = await runner.run({"blob": "x" * 1_000_000})
    assert result.state.data["seen"] == [[0, 1_000_000]] * 5
