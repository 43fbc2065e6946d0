"""Mermaid graphs: the configured flow of each mode, and the path real runs took."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner

import agentflow.workflows.loop as loop_workflow
from agentflow.config import load_config
from agentflow.inspect.graph.flow import config_graph, run_graph, trace_graph
from agentflow.inspect.trace.read import TraceEntry, trace
from agentflow.models.flow import FlowFailedError
from tests.conftest import REPO, flow_config, flow_runner

ID = r"[A-Za-z][A-Za-z0-9_]*"
LABEL = r'"[^"\n]*"'
NODE = re.compile(
    rf"^    (?P<id>{ID})(?:\[(?P<a>{LABEL})\]|\(\[(?P<b>{LABEL})\]\)|\{{\{{(?P<c>{LABEL})\}}\}}"
    rf"|\{{(?P<d>{LABEL})\}}|>(?P<e>{LABEL})\])$"
)
EDGE = re.compile(rf"^    (?P<src>{ID}) (?:-->|-\.->)(?:\|(?P<label>{LABEL})\|)? (?P<dst>{ID})$")
STYLE = re.compile(rf"^    (?:classDef {ID} [-a-z]+:[^ ]+|class {ID} {ID})$")
SUBGRAPH = re.compile(rf"^    subgraph (?P<id>{ID}) \[(?P<label>{LABEL})\]$")
Edges = list[tuple[str, str, str]]


def parse(chart: str) -> tuple[dict[str, str], Edges]:
    """Check every line is valid flowchart syntax (subgraphs balanced); return node and
    subgraph labels and labelled edges."""
    lines = chart.rstrip("\n").split("\n")
    assert re.fullmatch(r"flowchart (LR|TD)", lines[0])
    labels: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    boxes: list[str] = []  # the subgraphs open at this line
    for line in lines[1:]:
        if box := SUBGRAPH.match(line):
            assert box["id"] not in labels, "a subgraph id reused"
            labels[box["id"]] = box["label"].strip('"')
            boxes.append(box["id"])
        elif line == "    end":
            assert boxes, "end without a subgraph"
            boxes.pop()
        elif re.fullmatch(r"    direction (LR|TD)", line):
            assert boxes, "direction outside a subgraph"
        elif node := NODE.match(line):
            assert node["id"] not in labels, f"{node['id']} declared twice"
            label = next(g for g in node.group("a", "b", "c", "d", "e") if g)
            labels[node["id"]] = label.strip('"')
        elif edge := EDGE.match(line):
            edges.append((edge["src"], edge["dst"], (edge["label"] or "").strip('"')))
        else:
            assert STYLE.match(line), f"not valid Mermaid flowchart syntax: {line!r}"
    assert not boxes, "a subgraph is not closed"
    assert {n for src, dst, _ in edges for n in (src, dst)} <= set(labels), "undeclared node"
    assert "end" not in labels  # a reserved word in Mermaid
    assert len(set(edges)) == len(edges), "duplicate edges"
    return labels, [
        (labels[s].split("<br/>")[0], labels[d].split("<br/>")[0], t) for s, d, t in edges
    ]


def boxes(chart: str) -> dict[str, list[str]]:
    """Each subgraph's title (first line) -> what it holds directly (labels' first lines)."""
    labels, _ = parse(chart)
    held: dict[str, list[str]] = {}
    open_boxes: list[str] = []
    for line in chart.split("\n"):
        member = SUBGRAPH.match(line) or NODE.match(line)
        if member and open_boxes:
            held[open_boxes[-1]].append(labels[member["id"]].split("<br/>")[0])
        if box := SUBGRAPH.match(line):
            open_boxes.append(labels[box["id"]].split("<br/>")[0])
            held.setdefault(open_boxes[-1], [])
        elif line == "    end":
            open_boxes.pop()
    return held


def parse_set(chart: str) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    labels, edges = parse(chart)
    return labels, set(edges)


START = "event → test-{mode} ({mode})"


def test_sequential_config_graph() -> None:
    config = flow_config(
        "sequential", {"a": "tests.agents:noop", "b": "tests.agents:noop"},
        sequential_agents=["b", "a"],
    )  # fmt: skip
    _, edges = parse_set(config_graph(config))
    start = START.format(mode="sequential")
    assert edges == {(start, "b", ""), ("b", "a", ""), ("a", "result", "")}


def test_collaborative_and_mixed_config_graphs() -> None:
    agents = {name: "tests.agents:noop" for name in ("x", "y", "s")}
    collab = flow_config("collaborative", agents, collaborative_agents=["x", "y", "s"])
    _, edges = parse_set(config_graph(collab))
    start = START.format(mode="collaborative")
    assert edges == {(start, a, "") for a in "xys"} | {(a, "merge outputs", "") for a in "xys"} | {
        ("merge outputs", "result", "")
    }
    mixed = flow_config("mixed", agents, collaborative_agents=["x", "y"], sequential_agents=["s"])
    _, edges = parse_set(config_graph(mixed))
    start = START.format(mode="mixed")
    assert edges == {
        (start, "x", ""), (start, "y", ""), ("x", "merge outputs", ""),
        ("y", "merge outputs", ""), ("merge outputs", "s", ""), ("s", "result", ""),
    }  # fmt: skip


def test_loop_and_route_config_graphs() -> None:
    loop = flow_config("loop", {"c": "tests.agents:counter"}, loop_agent="c", max_iterations=7)
    _, edges = parse_set(config_graph(loop))
    assert edges == {
        (START.format(mode="loop"), "c", ""), ("c", "c", "repeat (max 7)"),
        ("c", "result", "loop_complete"),
    }  # fmt: skip
    agents = {"triage": {"handler": "tests.agents:router", "role": 'the "front" desk'},
              "billing": "tests.agents:router", "off": {"handler": "tests.agents:noop",
                                                        "enabled": False}}  # fmt: skip
    route = flow_config("route", agents, entry_agent="triage")
    labels, edges = parse_set(config_graph(route))
    assert "triage<br/>the #quot;front#quot; desk" in labels.values()
    assert "off" not in {label.split("<br/>")[0] for label in labels.values()}
    assert edges == {
        (START.format(mode="route"), "triage", "entry"),
        ("triage", "meta.route", ""), ("billing", "meta.route", ""),
        ("meta.route", "triage", "hand-off"), ("meta.route", "billing", "hand-off"),
        ("meta.route", "result", "no route"),
    }  # fmt: skip


def test_demo_config_graph_is_valid() -> None:
    _, edges = parse_set(config_graph(load_config(REPO / "agentflow.toml")))
    assert ("editor", "publisher", "") in edges and len(edges) == 4 + 4 + 4


async def test_graph_of_runs_marks_retries_failures_and_parallel_steps(
    client: Client, tmp_path: Path
) -> None:
    config = flow_config(
        "mixed",
        {"x": "tests.agents:noop", "y": {"handler": "tests.agents:flaky", "retry_attempts": 2},
         "s": {"handler": "tests.agents:fatal"}},
        collaborative_agents=["x", "y"], sequential_agents=["s"],
    )  # fmt: skip
    data = {"counter_file": str(tmp_path / "calls"), "fail_times": 1}
    async with flow_runner(client, config) as runner:
        handle = await runner.start(data)
        with pytest.raises(FlowFailedError):
            await handle.result()
        labels, edges = parse_set(run_graph(await trace(await runner.client(), handle.workflow_id)))
    start = "test-mixed (mixed)"
    assert edges == {
        (start, "x ✓", ""), (start, "y ✓", ""), ("x ✓", "s ✗ failed", ""),
        ("y ✓", "s ✗ failed", ""), ("s ✗ failed", "failed", ""),
    }  # fmt: skip
    assert "y ✓<br/>attempt 2" in labels.values()
    chart = run_graph(await trace(await runner.client(), handle.workflow_id))
    retried = next(i for i, label in labels.items() if label.startswith("y"))
    failed = next(i for i, label in labels.items() if label.startswith("s"))
    assert f"class {retried} retried" in chart and f"class {failed} failed" in chart


async def test_graph_of_a_route_and_of_a_continued_loop(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = flow_config(
        "route", {"a": "tests.agents:router", "b": "tests.agents:router"}, entry_agent="a"
    )
    async with flow_runner(client, route) as runner:
        handle = await runner.start({"routes": {"a": "b", "b": "a"}}, target="a")
        with pytest.raises(FlowFailedError):  # a → b → a … until max_hops
            await handle.result()
        _, edges = parse(run_graph(await trace(await runner.client(), handle.workflow_id)))
    hops = route.orchestration.max_hops + 1
    path = [("test-route (route)", "a ✓", "")] + [
        ("a ✓", "b ✓", "hand-off") if i % 2 else ("b ✓", "a ✓", "hand-off") for i in range(1, hops)
    ]
    assert edges == [*path, (path[-1][1], "failed", "")]
    monkeypatch.setattr(loop_workflow, "ITERATIONS_PER_RUN", 2)
    loop = flow_config("loop", {"c": "tests.agents:counter"}, loop_agent="c", max_iterations=5)
    async with flow_runner(client, loop, workflow_runner=UnsandboxedWorkflowRunner()) as runner:
        handle = await runner.start({})
        await handle.result()
        _, loop_edges = parse_set(run_graph(await trace(await runner.client(), handle.workflow_id)))
    assert loop_edges == {
        ("test-loop (loop)", "c x2 ✓", ""), ("c x2 ✓", "c x2 ✓", "continued-as-new"),
        ("c x2 ✓", "c ✓", "continued-as-new"), ("c ✓", "completed", ""),
    }  # fmt: skip


def _line(workflow: str, number: int, agent: str, action: str, **fields: Any) -> TraceEntry:
    """A trace line as agentflow/trace.py splices a child flow's lines into its parent's."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    fields.setdefault("attempt", 1 if agent else None)
    fields.setdefault("event_id", "e1")
    return TraceEntry(time=at, workflow_id=workflow, run_id=f"{workflow}-run", agent=agent,
                      history_event_id=number, action=action, **fields)  # fmt: skip


def _flow_agent(parent: str, number: int, agent: str, child: str, depth: int) -> TraceEntry:
    return _line(parent, number, agent, "started", batch=number, depth=depth,
                 child_workflow_id=f"{parent}/{agent}",
                 detail=f"flow {child} as {parent}/{agent}")  # fmt: skip


def test_run_graph_draws_child_flows_as_subgraphs_to_any_depth() -> None:
    child, grandchild = "P/sub", "P/sub/deep"
    failed = [
        _line("P", 1, "", "started", detail="parent (sequential)"),
        _line("P", 9, "a", "completed", batch=4),
        _flow_agent("P", 13, "sub", "child (mixed)", 0),
        _line(child, 1, "", "started", depth=1, detail="child (mixed)"),
        _line(child, 9, "x", "completed", batch=4, depth=1),
        _line(child, 12, "y", "completed", batch=4, depth=1, attempt=2),
        _flow_agent(child, 16, "deep", "grandchild (sequential)", 1),
        _line(grandchild, 1, "", "started", depth=2),
        _line(grandchild, 9, "g1", "completed", batch=4, depth=2),
        _line(grandchild, 15, "g2", "failed", batch=12, depth=2),
        _line(grandchild, 17, "", "failed", depth=2),
        _line(child, 20, "deep", "failed", batch=16, depth=1),
        _line(child, 22, "", "failed", depth=1),
        _line("P", 18, "sub", "failed", batch=13),
        _line("P", 20, "", "failed"),
    ]
    chart = trace_graph(failed)
    labels, edges = parse_set(chart)
    assert boxes(chart) == {"sub ✗ failed": ["x ✓", "y ✓", "deep ✗ failed"],
                            "deep ✗ failed": ["g1 ✓", "g2 ✗ failed"]}  # fmt: skip
    assert edges == {
        ("parent (sequential)", "a ✓", ""), ("a ✓", "sub ✗ failed", ""),
        ("x ✓", "deep ✗ failed", ""), ("y ✓", "deep ✗ failed", ""),
        ("g1 ✓", "g2 ✗ failed", ""), ("sub ✗ failed", "failed", ""),
    }  # fmt: skip
    assert {"sub ✗ failed<br/>flow child (mixed)", "y ✓<br/>attempt 2"} <= set(labels.values())
    assert "deep ✗ failed<br/>flow grandchild (sequential)" in labels.values()

    # A loop of a flow agent: each call its own child (not collapsed), the last still running.
    looping = [
        _line("L", 1, "", "started", detail="looper (loop)"),
        _flow_agent("L", 5, "sub", "child (sequential)", 0),
        _line("L/sub", 1, "", "started", depth=1),
        _line("L/sub", 9, "c1", "completed", batch=4, depth=1),
        _line("L/sub", 11, "", "completed", depth=1),
        _line("L", 8, "sub", "completed", batch=5),
        _flow_agent("L", 12, "sub", "child (sequential)", 0),  # the same id again: a new child
        _line("L/sub", 1, "", "started", depth=1),
    ]
    chart = run_graph(looping)
    assert parse(chart)[1] == [("looper (loop)", "sub ✓", ""), ("sub ✓", "sub … running", ""),
                     ("sub … running", "running", "")]  # fmt: skip
    assert boxes(chart) == {"sub ✓": ["c1 ✓"], "sub … running": ["no agent steps yet"]}

    # A session's event box holds the flow agent's subgraph the same way.
    session = [
        _line("S", 1, "", "started", event_id="", detail="session s1, flow desk"),
        _line("S", 5, "", "emitted", detail="to sub, by cli"),
        _flow_agent("S", 9, "sub", "child (sequential)", 0),
        *(line.model_copy(update={"workflow_id": "S/sub"}) for line in looping[2:5]),
        _line("S", 14, "sub", "completed", batch=9),
    ]
    chart = trace_graph(session)
    assert boxes(chart) == {"event e1 · to sub": ["sub ✓", "completed"], "sub ✓": ["c1 ✓"]}

    # A subscriber that is a flow agent hangs off its publisher as a subgraph too.
    child_lines = [line.model_copy(update={"workflow_id": "D/sub"}) for line in looping[2:5]]
    delivered = [
        _line("D", 1, "", "started", detail="desk (sequential)"),
        _line("D", 9, "a", "completed", batch=4),
        _flow_agent("D", 13, "sub", "child (sequential)", 0).model_copy(
            update={"topic": "news", "source_event": 9}
        ),
        *child_lines,
        _line("D", 18, "sub", "completed", batch=13, topic="news", source_event=9),
        _line("D", 20, "", "completed"),
    ]
    chart = run_graph(delivered)
    assert boxes(chart) == {"sub ✓": ["c1 ✓"]}
    assert ("a ✓", "sub ✓", "news") in parse(chart)[1]
