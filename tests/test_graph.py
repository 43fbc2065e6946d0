"""Mermaid graphs: the configured flow of each mode, and the path real runs took."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner

import workflows.loop
from agentflow.config import load_config
from agentflow.errors import FlowFailedError
from agentflow.graph import config_graph, run_graph
from tests.conftest import REPO, flow_config, flow_runner

ID = r"[A-Za-z][A-Za-z0-9_]*"
LABEL = r'"[^"\n]*"'
NODE = re.compile(
    rf"^    (?P<id>{ID})(?:\[(?P<a>{LABEL})\]|\(\[(?P<b>{LABEL})\]\)|\{{\{{(?P<c>{LABEL})\}}\}}"
    rf"|\{{(?P<d>{LABEL})\}}|>(?P<e>{LABEL})\])$"
)
EDGE = re.compile(rf"^    (?P<src>{ID}) (?:-->|-\.->)(?:\|(?P<label>{LABEL})\|)? (?P<dst>{ID})$")
STYLE = re.compile(rf"^    (?:classDef {ID} [-a-z]+:[^ ]+|class {ID} {ID})$")
Edges = list[tuple[str, str, str]]


def parse(chart: str) -> tuple[dict[str, str], Edges]:
    """Check every line is valid flowchart syntax; return node labels and labelled edges."""
    lines = chart.rstrip("\n").split("\n")
    assert re.fullmatch(r"flowchart (LR|TD)", lines[0])
    labels: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for line in lines[1:]:
        if node := NODE.match(line):
            label = next(g for g in node.group("a", "b", "c", "d", "e") if g)
            labels[node["id"]] = label.strip('"')
        elif edge := EDGE.match(line):
            edges.append((edge["src"], edge["dst"], (edge["label"] or "").strip('"')))
        else:
            assert STYLE.match(line), f"not valid Mermaid flowchart syntax: {line!r}"
    assert {n for src, dst, _ in edges for n in (src, dst)} <= set(labels), "undeclared node"
    assert "end" not in labels  # a reserved word in Mermaid
    assert len(set(edges)) == len(edges), "duplicate edges"
    return labels, [
        (labels[s].split("<br/>")[0], labels[d].split("<br/>")[0], t) for s, d, t in edges
    ]


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
        labels, edges = parse_set(run_graph(await runner.trace(handle.workflow_id)))
    start = "test-mixed (mixed)"
    assert edges == {
        (start, "x ✓", ""), (start, "y ✓", ""), ("x ✓", "s ✗ failed", ""),
        ("y ✓", "s ✗ failed", ""), ("s ✗ failed", "failed", ""),
    }  # fmt: skip
    assert "y ✓<br/>attempt 2" in labels.values()
    chart = run_graph(await runner.trace(handle.workflow_id))
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
        _, edges = parse(run_graph(await runner.trace(handle.workflow_id)))
    hops = route.orchestration.max_hops + 1
    path = [("test-route (route)", "a ✓", "")] + [
        ("a ✓", "b ✓", "hand-off") if i % 2 else ("b ✓", "a ✓", "hand-off") for i in range(1, hops)
    ]
    assert edges == [*path, (path[-1][1], "failed", "")]
    monkeypatch.setattr(workflows.loop, "ITERATIONS_PER_RUN", 2)
    loop = flow_config("loop", {"c": "tests.agents:counter"}, loop_agent="c", max_iterations=5)
    async with flow_runner(client, loop, workflow_runner=UnsandboxedWorkflowRunner()) as runner:
        handle = await runner.start({})
        await handle.result()
        _, edges = parse_set(run_graph(await runner.trace(handle.workflow_id)))
    assert edges == {
        ("test-loop (loop)", "c x2 ✓", ""), ("c x2 ✓", "c x2 ✓", "continued-as-new"),
        ("c x2 ✓", "c ✓", "continued-as-new"), ("c ✓", "completed", ""),
    }  # fmt: skip
