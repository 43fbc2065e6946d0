"""Mermaid diagrams of a flow: what the config declares, and the path a run actually took.

Only plain ``flowchart`` syntax (node ids sanitised, every label quoted), so the output
renders in GitHub markdown inside a ```mermaid block.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from agentflow.config import FlowConfig
from agentflow.trace import TraceEntry

START, DONE = "flow_start", "flow_done"
STYLES = [
    "classDef failed fill:#fde2e2,stroke:#c62828,color:#000",
    "classDef retried fill:#fff4d6,stroke:#b26a00,color:#000",
]


class Mermaid:
    """A small flowchart builder that keeps ids valid and labels quoted."""

    def __init__(self, direction: str = "LR") -> None:
        self.lines = [f"flowchart {direction}"]
        self._ids: dict[str, str] = {}

    def node_id(self, key: str) -> str:
        if key not in self._ids:
            base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", key)
            node, n = base, 1
            while node in self._ids.values():
                n += 1
                node = f"{base}_{n}"
            self._ids[key] = node
        return self._ids[key]

    def node(self, key: str, label: str, shape: str = "rect", css: str | None = None) -> str:
        node = self.node_id(key)
        opening, closing = {"rect": ("[", "]"), "stadium": ("([", "])"),
                            "hexagon": ("{{", "}}"), "rhombus": ("{", "}"),
                            "flag": (">", "]")}[shape]  # fmt: skip
        self.lines.append(f'    {node}{opening}"{quote(label)}"{closing}')
        if css:
            self.lines.append(f"    class {node} {css}")
        return node

    def edge(self, src: str, dst: str, label: str = "", dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        text = f'|"{quote(label)}"|' if label else ""
        self.lines.append(f"    {self.node_id(src)} {arrow}{text} {self.node_id(dst)}")

    def chain(self, keys: Iterable[str]) -> None:
        for src, dst in itertools.pairwise(keys):
            self.edge(src, dst)

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def quote(label: str) -> str:
    """Mermaid labels cannot hold a double quote or a line break; use its entity and <br/>."""
    return label.replace('"', "#quot;").replace("\n", "<br/>")


def config_graph(config: FlowConfig) -> str:
    """The flow as configured: its mode's shape, agents, hand-offs (route mode), and the
    topics agents subscribe to."""
    orch = config.orchestration
    chart = Mermaid()
    chart.node(START, f"event → {config.name} ({config.mode})", "stadium")
    for name in config.enabled_agents():
        role = config.agents[name].role
        chart.node(name, f"{name}\n{role}" if role else name)
    chart.node(DONE, "result", "stadium")
    if config.mode in ("sequential", "collaborative", "mixed"):
        tail = START
        if orch.collaborative_agents:
            chart.node("merge", "merge outputs", "hexagon")
            for name in orch.collaborative_agents:
                chart.edge(START, name)
                chart.edge(name, "merge")
            tail = "merge"
        chart.chain([tail, *orch.sequential_agents, DONE])
    elif config.mode == "loop":
        agent = orch.loop_agent or ""
        chart.edge(START, agent)
        chart.edge(agent, agent, f"repeat (max {orch.max_iterations})")
        chart.edge(agent, DONE, "loop_complete")
    else:  # route: agents hand off through meta.route, so any agent may follow any other
        entry = orch.entry_agent
        chart.edge(START, entry or "route_target", "entry" if entry else "")
        if not entry:
            chart.node("route_target", "event.target_agent\n(else the first enabled agent)",
                       "rhombus")  # fmt: skip
            for name in config.enabled_agents():
                chart.edge("route_target", name, dotted=True)
        chart.node("router", "meta.route", "rhombus")
        for name in config.enabled_agents():
            chart.edge(name, "router")
            chart.edge("router", name, "hand-off", dotted=True)
        chart.edge("router", DONE, "no route")
    for topic in config.topics():  # any agent may publish; subscribers react on the side
        chart.node(f"topic:{topic}", f"topic: {topic}", "flag")
        for name in config.subscribers(topic):
            chart.edge(f"topic:{topic}", name, "subscribes", dotted=True)
    chart.lines += [f"    {style}" for style in STYLES]
    return chart.render()


def run_graph(entries: list[TraceEntry]) -> str:
    """The path a run took: one node per agent step in order (repeats collapsed), parallel
    steps side by side, failures and retries marked, continue-as-new on its edge; subscriber
    steps hang off their publisher's step on dotted edges labelled with the topic."""
    steps = _steps([e for e in entries if not e.topic])
    ended = [e for e in entries if not e.agent and e.action != "started"]
    outcome = ended[-1].action if ended else "running"
    started = next((e for e in entries if not e.agent), None)
    chart = Mermaid()
    chart.node(START, started.detail if started else "run", "stadium")
    previous: list[str] = [START]
    label, number = "", 1
    node_of: dict[tuple[str, int], str] = {}  # (run, completed event) -> the step's node
    for batch in steps:
        if isinstance(batch, str):  # the run continued as a new run here
            label = batch
            continue
        keys = []
        for step in batch:
            keys.append(f"step{number}")
            _step_node(chart, keys[-1], step)
            node_of.update(dict.fromkeys(step[5], keys[-1]))
            number += 1
        for src in previous:
            for dst in keys:
                chart.edge(src, dst, label)
        handed_off = [step for step in batch if step[4]]
        previous, label = keys, ("hand-off" if handed_off else "")
    chart.node(DONE, outcome, "stadium", css="failed" if outcome != "completed" else None)
    for src in previous:
        chart.edge(src, DONE)
    _deliveries(chart, entries, node_of)
    chart.lines += [f"    {style}" for style in STYLES]
    return chart.render()


def _deliveries(
    chart: Mermaid, entries: list[TraceEntry], node_of: dict[tuple[str, int], str]
) -> None:
    """Subscriber steps: one node per publisher, topic, agent and outcome (repeats counted).
    A chained subscriber hangs off the subscriber that published to it."""
    Key = tuple[str, str, str, int, str]  # publisher node, topic, agent, attempt, outcome
    groups: dict[Key, list[tuple[str, int]]] = {}
    names: dict[Key, str] = {}
    for e in entries:
        publisher = node_of.get((e.run_id, e.source_event or 0))
        if not e.topic or e.action not in ("completed", "failed", "timed out") or not publisher:
            continue
        key: Key = (publisher, e.topic, e.agent, e.attempt or 1, str(e.action))
        groups.setdefault(key, []).append((e.run_id, e.history_event_id))
        node_of[e.run_id, e.history_event_id] = names.setdefault(key, f"delivery{len(names) + 1}")
    for group, events in groups.items():
        publisher, topic, agent, attempt, action = group
        node = names[group]
        _step_node(chart, node, (agent, attempt, action, len(events), "", events))
        chart.edge(publisher, node, topic, dotted=True)


def _step_node(chart: Mermaid, key: str, step: Step) -> str:
    agent, attempt, action, count, *_ = step
    times = f" x{count}" if count > 1 else ""
    mark = {"completed": "✓", "failed": "✗ failed", "timed out": "⏱ timed out"}[action]
    retry = f"\nattempt {attempt}" if attempt > 1 else ""
    css = "failed" if action != "completed" else "retried" if retry else None
    return chart.node(key, f"{agent}{times} {mark}{retry}", css=css)


# agent, attempt, outcome, repeats, hand-off, and the (run, history event) of each repeat
Step = tuple[str, int, str, int, str, list[tuple[str, int]]]


def _steps(entries: list[TraceEntry]) -> list[list[Step] | str]:
    """Agent outcomes grouped by the workflow task that scheduled them (= ran in parallel)."""
    out: list[list[Step] | str] = []
    batches: dict[tuple[str, int | None], list[Step]] = {}
    handoffs = {(e.run_id, e.history_event_id): e.detail for e in entries
                if e.action == "handed off"}  # fmt: skip
    for entry in entries:
        if entry.action == "continued-as-new":
            out.append("continued-as-new")
        if not entry.agent or entry.action not in ("completed", "failed", "timed out"):
            continue
        handoff = handoffs.get((entry.run_id, entry.history_event_id), "")
        origin = [(entry.run_id, entry.history_event_id)]
        step: Step = (entry.agent, entry.attempt or 1, entry.action, 1, handoff, origin)
        key = (entry.run_id, entry.batch)
        if key in batches:
            batches[key].append(step)
            continue
        last = out[-1] if out else None
        repeat = isinstance(last, list) and len(last) == 1 and last[0][:3] == step[:3]
        if (
            repeat
            and isinstance(last, list)
            and step[1:3] == (1, "completed")
            and not (handoff or last[0][4])
        ):
            agent, attempt, action, count, _, seen = last[0]
            last[0] = (agent, attempt, action, count + 1, "", seen + origin)  # a loop: collapse
            batches[key] = last
            continue
        batches[key] = [step]
        out.append(batches[key])
    return out
