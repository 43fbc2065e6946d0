"""Traces rebuilt from Temporal history match what each run did, step by step."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner

import agentflow.workflows.loop as loop_workflow
from agentflow.inspect.trace.read import TraceEntry, format_table, trace
from agentflow.models.flow import FlowFailedError
from tests.conftest import flow_config, flow_runner
from tests.flows import append_then_noop


def steps(entries: list[TraceEntry]) -> list[tuple[str, str, int | None]]:
    return [(e.agent, e.action, e.attempt) for e in entries]


async def test_trace_of_a_sequential_run(client: Client) -> None:
    config = flow_config(
        "sequential",
        {"a": "tests.agents:append", "b": "tests.agents:noop", "c": "tests.agents:append"},
        sequential_agents=["a", "b", "c"],
    )
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"trail": []})
        await handle.result()
        entries = await trace(await runner.client(), handle.workflow_id)
    assert steps(entries) == [
        ("", "started", None),
        ("a", "started", 1), ("a", "completed", 1),
        ("b", "started", 1), ("b", "completed", 1),
        ("c", "started", 1), ("c", "completed", 1),
        ("", "completed", None),
    ]  # fmt: skip
    by_step = {(e.agent, e.action): e for e in entries}
    assert by_step["a", "completed"].changed_keys == ["trail"]
    assert by_step["b", "completed"].changed_keys == []
    assert by_step["", "completed"].changed_keys == ["trail"]
    assert by_step["", "started"].detail == "test-sequential (sequential)"
    assert len({e.event_id for e in entries}) == 1 and entries[0].event_id
    assert {e.run_id for e in entries} == {handle.run_id}
    ids = [e.history_event_id for e in entries]
    assert ids == sorted(ids) and entries[0].history_event_id == 1
    assert all(e.duration_ms is not None and e.duration_ms >= 0
               for e in entries if e.action == "completed")  # fmt: skip
    table = format_table(entries).splitlines()
    assert table[0].split()[:5] == ["TIME", "#", "EVENT", "AGENT", "ACTION"]
    assert len(table) == len(entries) + 1 and "(flow)" in table[1]


async def test_trace_of_a_collaborative_run(client: Client) -> None:
    config = flow_config(
        "collaborative",
        {"x": "tests.agents:set_shared", "y": "tests.agents:set_shared", "z": "tests.agents:noop"},
        collaborative_agents=["x", "y", "z"],
    )
    async with flow_runner(client, config) as runner:
        handle = await runner.start({})
        await handle.result()
        entries = await trace(await runner.client(), handle.workflow_id)
    agents = entries[1:-1]
    starts = [e for e in agents if e.action == "started"]
    assert [e.agent for e in starts] == ["x", "y", "z"]  # scheduled in config order
    assert len({e.batch for e in starts}) == 1  # by one workflow task: in parallel
    assert agents[:3] == starts  # all three started before any finished
    done = {e.agent: e for e in agents if e.action == "completed"}
    assert set(done) == {"x", "y", "z"} and len(agents) == 6
    assert done["x"].changed_keys == ["winner", "x"] and done["z"].changed_keys == []
    assert (entries[0].action, entries[-1].action) == ("started", "completed")


async def test_trace_of_a_failing_then_retried_agent(client: Client, tmp_path: Path) -> None:
    config = flow_config(
        "sequential",
        {"f": {"handler": "tests.agents:flaky", "retry_attempts": 3}},
        sequential_agents=["f"],
    )
    data = {"counter_file": str(tmp_path / "calls"), "fail_times": 2}
    async with flow_runner(client, config) as runner:
        handle = await runner.start(data)
        await handle.result()
        entries = await trace(await runner.client(), handle.workflow_id, agent="f")
    assert steps(entries) == [("f", "started", 1), ("f", "retried", 3), ("f", "completed", 3)]
    assert "after 2 failed attempt(s)" in entries[1].detail
    assert "transient failure 2" in entries[1].detail
    assert entries[2].changed_keys == ["flaky_calls"]


async def test_trace_of_a_failed_run(client: Client) -> None:
    config = flow_config(
        "sequential",
        {"a": "tests.agents:append", "b": {"handler": "tests.agents:value_error",
                                          "retry_attempts": 1}},
        sequential_agents=["a", "b"],
    )  # fmt: skip
    async with flow_runner(client, config) as runner:
        handle = await runner.start({})
        with pytest.raises(FlowFailedError):
            await handle.result()
        entries = await trace(await runner.client(), handle.workflow_id)
        flow_only = await trace(await runner.client(), handle.workflow_id, flow_only=True)
    assert steps(entries) == [
        ("", "started", None),
        ("a", "started", 1), ("a", "completed", 1),
        ("b", "started", 1), ("b", "retried", 2), ("b", "failed", 2),
        ("", "failed", None),
    ]  # fmt: skip
    assert "ValueError: bad value" in entries[5].detail
    assert "agent 'b' (step 2 of 2) failed" in entries[6].detail
    assert steps(flow_only) == [
        ("", "started", None), ("a", "completed", 1), ("b", "failed", 2), ("", "failed", None),
    ]  # fmt: skip


async def test_trace_follows_continue_as_new(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two iterations per run instead of 500; the unsandboxed runner sees the patched module.
    monkeypatch.setattr(loop_workflow, "ITERATIONS_PER_RUN", 2)
    config = flow_config("loop", {"c": "tests.agents:counter"}, loop_agent="c", max_iterations=9)
    async with flow_runner(client, config, workflow_runner=UnsandboxedWorkflowRunner()) as runner:
        handle = await runner.start({"stop_at": 5})
        result = await handle.result()
        entries = await trace(
            await runner.client(), handle.workflow_id
        )  # the latest run's id is not needed
        middle = next(e.run_id for e in entries if e.run_id != handle.run_id)
        from_middle = await trace(await runner.client(), handle.workflow_id, middle)
    assert result.iterations == 5
    flow = [(e.action, e.run_id) for e in entries if not e.agent]
    runs = list(dict.fromkeys(run for _, run in flow))
    assert len(runs) == 3 and runs[0] == handle.run_id
    assert [action for action, _ in flow] == [
        "started",
        "continued-as-new",
        "started",
        "continued-as-new",
        "started",
        "completed",
    ]
    assert [e.action for e in entries if e.agent == "c"] == ["started", "completed"] * 5
    assert f"continued from run {runs[0]}" in entries[6].detail
    assert f"new run {runs[1]}" in entries[5].detail
    assert from_middle == entries


async def test_trace_of_a_session_and_by_run_id(client: Client) -> None:
    config, session = append_then_noop(), f"s-{uuid.uuid4().hex[:8]}"
    async with flow_runner(client, config) as runner:
        first = await runner.start({}, session_id=session)
        second = await runner.start({}, session_id=session)
        await first.result()
        await second.result()
    entries: list[TraceEntry] = []
    for _ in range(100):  # visibility is eventually consistent
        entries = await trace(client, session=session, agent="b")
        if len(entries) == 4:
            break
        await asyncio.sleep(0.1)
    assert sorted((e.workflow_id, e.action) for e in entries) == sorted(
        (h.workflow_id, action) for h in (first, second) for action in ("started", "completed")
    )
