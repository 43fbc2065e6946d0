"""Traces of sessions (many events in one long-lived workflow) and of local agents, rebuilt from
real Temporal histories: every event in order, each step under its event, hook rejections,
error-handler hand-offs and dead letters; the session graph."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow.cli.main import main
from agentflow.client.runner import Runner
from agentflow.config import FlowConfig
from agentflow.inspect.graph.flow import run_graph, session_graph
from agentflow.inspect.trace.read import TraceEntry, format_table, trace, trace_chain
from agentflow.models.flow import FlowFailedError
from agentflow.names import session_workflow_id
from tests.conftest import flow_config, flow_runner, running_worker
from tests.test_graph import EDGE, NODE, STYLE

CHECK, FIXER = "tests.trace_agents:check", "tests.trace_agents:fixer"
REJECT = "tests.trace_agents:reject_marked"
Line = tuple[str, str, str]  # event id, agent, action


def _flow(**options: Any) -> FlowConfig:
    """``note`` then ``check`` (fails when told to), ``fixer`` as the error handler, and a
    before_event_handling hook that rejects events marked ``reject``."""
    tables = {
        "hooks": {"before_event_handling": [REJECT]},
        "error_routing": {"error_handler": "fixer"},
        **options.pop("tables", {}),
    }
    agents = {"note": "tests.agents:append", "check": CHECK, "fixer": FIXER}
    return flow_config("sequential", agents, sequential_agents=["note", "check"],
                       tables=tables, **options)  # fmt: skip


def _session() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


async def _session_trace(
    client: Client, session: str, done: Callable[[list[TraceEntry]], bool], **filters: Any
) -> list[TraceEntry]:
    """The session's trace once ``done`` holds (visibility lists new runs eventually)."""
    deadline = time.monotonic() + 15
    while True:
        entries = await trace(client, session=session, **filters)
        if done(entries) or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(0.1)


def _lines(entries: list[TraceEntry]) -> list[Line]:
    return [(e.event_id, e.agent, e.action) for e in entries]


def _agent_steps(event_id: str, *agents: str) -> list[Line]:
    return [(event_id, agent, action) for agent in agents for action in ("started", "completed")]


async def test_a_session_trace_tells_each_event_in_order(client: Client) -> None:
    config, session = _flow(), _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        completes = await runner.emit({}, session_id=session)
        assert (await completes.outcome()).status == "completed"
        handled = await runner.emit({"fail": True}, session_id=session, priority="high")
        assert (await handled.outcome()).status == "handled"
        rejected = await runner.emit({"reject": True}, session_id=session, wait=True)
        letter = await rejected.outcome()
    assert letter.status == "dead_lettered" and letter.dead_letter_id
    entries = await _session_trace(
        client, session, lambda found: any(e.action == "dead-lettered" for e in found)
    )
    one, two, three = completes.event_id, handled.event_id, rejected.event_id
    assert _lines(entries) == [
        ("", "", "started"),
        (one, "", "emitted"), *_agent_steps(one, "hooks", "note", "check"),
        (two, "", "emitted"), *_agent_steps(two, "hooks", "note"),
        (two, "check", "started"), (two, "check", "failed"), (two, "check", "handed off"),
        *_agent_steps(two, "fixer"),
        (three, "", "emitted"), *_agent_steps(three, "hooks"), (three, "hooks", "rejected"),
        (three, "", "dead-lettered"),
    ]  # fmt: skip
    by_line = {(e.event_id, e.agent, e.action): e for e in entries}
    assert by_line[two, "", "emitted"].detail == "priority high"
    assert by_line[two, "check", "failed"].detail == "FatalError: asked to fail"
    assert by_line[two, "check", "handed off"].detail == "to error handler fixer (fatal)"
    assert by_line[two, "fixer", "completed"].changed_keys == ["fixed", "kind"]
    assert by_line[one, "note", "completed"].changed_keys == ["trail"]
    assert by_line[three, "hooks", "rejected"].detail == (
        f"before_event_handling hook {REJECT}: marked for rejection"
    )
    dead = by_line[three, "", "dead-lettered"]
    assert dead.dead_letter_id == letter.dead_letter_id
    assert dead.detail.startswith(f"as {letter.dead_letter_id} (hook rejected): rejected by")
    # One story: the session's workflow only, not the letter's own workflow as well.
    assert {e.workflow_id for e in entries} == {session_workflow_id(config.name, session)}
    [letter_started] = await trace(client, letter.dead_letter_id)  # open: nothing else yet
    assert (letter_started.event_id, letter_started.action) == (three, "started")
    assert (
        letter_started.detail
        == f"dead letter of session {session} (test-sequential): hook rejected"
    )
    table = format_table(entries).splitlines()
    assert table[1].split()[2:4] == ["(session)", "started"]
    assert table[-1].split()[2:5] == [three[:8], "(flow)", "dead-lettered"]

    # Filters: one event (by id or by the table's prefix), one agent, outcomes only.
    for event in (two, two[:8]):
        only_two = await trace(client, session=session, event=event)
        assert _lines(only_two) == [line for line in _lines(entries) if line[0] == two]
    checks = await trace(client, session=session, agent="check")
    assert [(e.event_id, e.action) for e in checks] == [
        (one, "started"), (one, "completed"), (two, "started"), (two, "failed"),
        (two, "handed off"),
    ]  # fmt: skip
    outcomes = await trace(client, session=session, flow_only=True, event=three)
    assert [e.action for e in outcomes] == ["emitted", "completed", "rejected", "dead-lettered"]

    # The graph: one box per event, how each ended, the dead letter marked.
    labels, edges, boxes = _parse_session_graph(session_graph(entries))
    assert [box.split(" · ")[0] for box in boxes] == [f"event {one}", f"event {two}",
                                                      f"event {three}"]  # fmt: skip
    assert {"completed", "handled by fixer", "dead letter<br/>hook rejected"} <= set(labels)
    assert ("check ✗ failed", "fixer ✓", "error handler (fatal)") in edges
    assert ("before_event_handling ✗ rejected", "dead letter<br/>hook rejected", "") in edges
    _, _, last_two = _parse_session_graph(session_graph(entries, last=2))
    assert len(last_two) == 2 and "… 1 earlier events" in session_graph(entries, last=2)


async def test_a_session_that_continued_as_new_traces_all_its_events(client: Client) -> None:
    # Local agents too: their history markers do not name the event, the session's input
    # (its queue, carried across continue-as-new) and arrival order do.
    config = _flow(local_agents=True, tables={"sessions": {"events_per_run": 2}})
    session = _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        handles = [await runner.emit({"n": n}, session_id=session) for n in range(5)]
        assert [(await h.outcome()).status for h in handles] == ["completed"] * 5
    ids = [handle.event_id for handle in handles]
    entries = await _session_trace(
        client, session, lambda found: sum(e.agent == "check" for e in found) == 5
    )
    assert [e.event_id for e in entries if e.action == "emitted"] == ids
    assert [e.event_id for e in entries if e.agent == "check"] == ids
    assert [(e.event_id, e.agent) for e in entries if e.agent and e.agent != "hooks"] == [
        (event_id, agent) for event_id in ids for agent in ("note", "check")
    ]
    steps = [e for e in entries if e.agent in ("note", "check")]
    assert all(e.action == "completed" and e.detail == "local" for e in steps)
    assert all(e.attempt == 1 and e.duration_ms is not None for e in steps)
    assert [e.changed_keys for e in steps[:2]] == [["trail"], ["checked"]]
    runs = list(dict.fromkeys(e.run_id for e in entries))
    assert len(runs) >= 3  # five events, two per run
    assert sum(e.action == "continued-as-new" for e in entries) == len(runs) - 1
    only_last = await trace(client, session=session, event=ids[-1])
    assert {e.event_id for e in only_last} == {ids[-1]} and len(only_last) == 4  # + hooks


async def test_local_agents_show_in_a_run_trace_and_graph(client: Client, tmp_path: Path) -> None:
    agents = {"x": "tests.agents:set_shared", "y": "tests.agents:set_shared",
              "s": {"handler": "tests.agents:flaky", "retry_attempts": 2},
              "f": "tests.agents:fatal"}  # fmt: skip
    config = flow_config("mixed", agents, collaborative_agents=["x", "y"],
                         sequential_agents=["s", "f"], local_agents=True)  # fmt: skip
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"counter_file": str(tmp_path / "calls"), "fail_times": 1})
        with pytest.raises(FlowFailedError, match="can never be processed"):
            await handle.result()
        entries = await trace_chain(client, handle.workflow_id)
    assert [(e.agent, e.action, e.attempt) for e in entries] == [
        ("", "started", None), ("x", "completed", 1), ("y", "completed", 1),
        ("s", "completed", 2), ("f", "failed", 1), ("", "failed", None),
    ]  # fmt: skip
    x, y, s, f = entries[1:5]
    assert x.batch == y.batch != s.batch != f.batch  # x and y ran side by side
    assert (x.changed_keys, s.changed_keys) == (["winner", "x"], ["flaky_calls"])
    assert f.detail == "FatalError: the input can never be processed (local)"
    chart = run_graph(entries)
    assert '"s ✓<br/>attempt 2"' in chart and '"f ✗ failed"' in chart


async def test_trace_and_graph_commands_of_a_session(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.chdir(tmp_path)
    config, session = _flow(), _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        first = await runner.emit({}, session_id=session, wait=True)
        second = await runner.emit({"fail": True}, session_id=session, wait=True)
        await second.outcome()
    await _session_trace(client, session, lambda found: any(e.agent == "fixer" for e in found))

    async def cli(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, list(argv))  # main() runs its own event loop
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await cli("trace", "--session", session, "--event", second.event_id, "--json")
    rows = [json.loads(line) for line in out.splitlines()]  # JSON Lines
    assert code == 0 and {row["event_id"] for row in rows} == {second.event_id}
    assert ["check", "handed off", "to error handler fixer (fatal)"] in [
        [row["agent"], row["action"], row["detail"]] for row in rows
    ]
    code, out, _ = await cli("trace", "--session", session, "--flow-only")
    assert code == 0 and first.event_id[:8] in out and "handed off" in out
    code, out, _ = await cli("graph", session_workflow_id(config.name, session), "--last", "1")
    _, _, boxes = _parse_session_graph(out)
    assert code == 0 and [box.split(" · ")[0] for box in boxes] == [f"event {second.event_id}"]
    code, _, err = await cli("graph", session_workflow_id(config.name, session), "--last", "0")
    assert code == 2 and err.count("\n") == 1 and "--last" in err


SUBGRAPH = re.compile(r'^    subgraph (?P<id>[A-Za-z][A-Za-z0-9_]*) \["(?P<label>[^"\n]*)"\]$')


def _parse_session_graph(
    chart: str,
) -> tuple[set[str], set[tuple[str, str, str]], list[str]]:
    """Check every line is valid Mermaid; return node labels, labelled edges, box titles."""
    lines = chart.rstrip("\n").split("\n")
    assert lines[0] == "flowchart TD"
    labels: dict[str, str] = {}
    boxes: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    depth = 0
    for line in lines[1:]:
        if box := SUBGRAPH.match(line):
            boxes[box["id"]] = box["label"]
            depth += 1
        elif line == "    end":
            depth -= 1
        elif node := NODE.match(line):
            labels[node["id"]] = next(g for g in node.group("a", "b", "c", "d", "e") if g)[1:-1]
        elif edge := EDGE.match(line):
            edges.append((edge["src"], edge["dst"], (edge["label"] or "").strip('"')))
        else:
            assert line == "    direction LR" or STYLE.match(line), f"not Mermaid: {line!r}"
        assert depth in (0, 1), "unbalanced subgraph"
    assert depth == 0
    named = labels | boxes
    assert {n for src, dst, _ in edges for n in (src, dst)} <= set(named), "undeclared node"
    return (
        set(labels.values()),
        {(named[src], named[dst], label) for src, dst, label in edges},
        list(boxes.values()),
    )
