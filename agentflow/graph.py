"""Mermaid diagrams of a flow: what the config declares, the path a run actually took, and a
session's latest events (one box each: its agent steps and how it ended).

Only plain ``flowchart`` syntax (node ids sanitised, every label quoted; a session's events
are subgraphs), so the output renders in GitHub markdown inside a ```mermaid block.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from agentflow._trace_decoder import ERROR_HANDOFF, HOOKS, TraceEntry
from agentflow.config import FlowConfig

START, DONE = "flow_start", "flow_done"
STYLES = [
    "classDef failed fill:#fde2e2,stroke:#c62828,color:#000",
    "classDef retried fill:#fff4d6,stroke:#b26a00,color:#000",
]
# A session graph draws this many of the session's latest events (it may hold thousands).
SESSION_EVENTS = 20


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
    topics agents subscribe to. An agent that is a whole flow is a subgraph of that flow."""
    chart = Mermaid()
    _flow_shape(chart, config, "")
    chart.lines += [f"    {style}" for style in STYLES]
    return chart.render()


def _flow_shape(chart: Mermaid, config: FlowConfig, prefix: str) -> None:
    """Draw ``config`` with node keys starting with ``prefix`` (a nested flow's agent path)."""
    orch = config.orchestration
    start, done = prefix + START, prefix + DONE

    def key(name: str) -> str:
        return prefix + name

    chart.node(start, f"event → {config.name} ({config.mode})", "stadium")
    for name in config.enabled_agents():
        role = config.agents[name].role
        label = f"{name}\n{role}" if role else name
        if name in config.nested:
            child = config.nested[name]
            title = f"{label}\nflow {child.name} ({child.mode})"
            chart.lines.append(f'    subgraph {chart.node_id(key(name))} ["{quote(title)}"]')
            _flow_shape(chart, child, f"{key(name)}/")
            chart.lines.append("    end")
        else:
            chart.node(key(name), label)
    chart.node(done, "result", "stadium")
    if config.mode in ("sequential", "collaborative", "mixed"):
        tail = start
        if orch.collaborative_agents:
            chart.node(key("merge"), "merge outputs", "hexagon")
            for name in orch.collaborative_agents:
                chart.edge(start, key(name))
                chart.edge(key(name), key("merge"))
            tail = key("merge")
        chart.chain([tail, *map(key, orch.sequential_agents), done])
    elif config.mode == "loop":
        agent = key(orch.loop_agent or "")
        chart.edge(start, agent)
        chart.edge(agent, agent, f"repeat (max {orch.max_iterations})")
        chart.edge(agent, done, "loop_complete")
    else:  # route: agents hand off through meta.route, so any agent may follow any other
        entry = orch.entry_agent
        chart.edge(start, key(entry or "route_target"), "entry" if entry else "")
        if not entry:
            chart.node(key("route_target"), "event.target_agent\n(else the first enabled agent)",
                       "rhombus")  # fmt: skip
            for name in config.enabled_agents():
                chart.edge(key("route_target"), key(name), dotted=True)
        chart.node(key("router"), "meta.route", "rhombus")
        for name in config.enabled_agents():
            chart.edge(key(name), key("router"))
            chart.edge(key("router"), key(name), "hand-off", dotted=True)
        chart.edge(key("router"), done, "no route")
    for topic in config.topics():  # any agent may publish; subscribers react on the side
        chart.node(key(f"topic:{topic}"), f"topic: {topic}", "flag")
        for name in config.subscribers(topic):
            chart.edge(key(f"topic:{topic}"), key(name), "subscribes", dotted=True)


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


def trace_graph(entries: list[TraceEntry], last: int = SESSION_EVENTS) -> str:
    """The graph of a traced workflow: a session's last events, or a run's path (a flow
    agent is one step: its child flow's own lines, one level deeper, are left out)."""
    entries = [entry for entry in entries if entry.depth == 0]
    if any(entry.action == "emitted" for entry in entries):
        return session_graph(entries, last)
    return run_graph(entries)


def session_graph(entries: list[TraceEntry], last: int = SESSION_EVENTS) -> str:
    """A session's events in the order it processed them (then those still queued), the last
    ``last`` of them: one box per event with its agent steps and how it ended (completed,
    handled by an error handler, dead-lettered, ...)."""
    lines: dict[str, list[TraceEntry]] = {}
    emitted: dict[str, TraceEntry] = {}
    for entry in entries:
        if not entry.event_id:
            continue
        if entry.action == "emitted":
            emitted.setdefault(entry.event_id, entry)
        else:
            lines.setdefault(entry.event_id, []).append(entry)
    order = [*lines, *(event_id for event_id in emitted if event_id not in lines)]
    shown = order[-last:] if last > 0 else []
    started = next((e for e in entries if not e.event_id and e.action == "started"), None)
    chart = Mermaid("TD")
    chart.node("session", started.detail.split(",")[0] if started else "session", "stadium")
    previous = "session"
    if len(order) > len(shown):
        chart.node("earlier", f"… {len(order) - len(shown)} earlier events")
        chart.edge(previous, "earlier")
        previous = "earlier"
    for position, event_id in enumerate(shown, start=1):
        key = f"event{position}"
        title = f"event {event_id}"
        if event_id in emitted:
            title += f" · {emitted[event_id].detail.split(',')[0]}"
        chart.lines += [f'    subgraph {chart.node_id(key)} ["{quote(title)}"]', "    direction LR"]
        _event_path(chart, key, lines.get(event_id, []))
        chart.lines.append("    end")
        chart.edge(previous, key)
        previous = key
    chart.lines += [f"    {style}" for style in STYLES]
    return chart.render()


def _event_path(chart: Mermaid, prefix: str, entries: list[TraceEntry]) -> None:
    """One event's agent steps (parallel ones side by side) and its outcome; node keys start
    with ``prefix``."""
    routed = [e for e in entries if e.action == "handed off" and e.detail.startswith(ERROR_HANDOFF)]
    handlers = dict(_handler(e.detail) for e in routed)
    steps = [e for e in entries if e.agent != HOOKS and not e.topic and e not in routed]
    previous: list[str] = []
    for number, batch in enumerate(_steps(steps), start=1):
        if isinstance(batch, str):
            continue  # a loop continued as new mid-event: its steps go on
        keys = [f"{prefix}_step{number}_{n}" for n in range(len(batch))]
        for key, step in zip(keys, batch, strict=True):
            _step_node(chart, key, step)
        label = next((f"error handler ({handlers[s[0]]})" for s in batch if s[0] in handlers), "")
        for src in previous:
            for dst in keys:
                chart.edge(src, dst, label)
        previous = keys
    for rejected in (e for e in entries if e.action == "rejected"):
        key = f"{prefix}_rejected{rejected.history_event_id}"
        where = rejected.detail.split(" hook ")[0] if rejected.agent == HOOKS else rejected.agent
        chart.node(key, f"{where} ✗ rejected", css="failed")
        for src in previous:
            chart.edge(src, key)
        previous = [key]
    outcome, failed = _outcome(entries, handlers)
    done = f"{prefix}_outcome"
    chart.node(done, outcome, "stadium", css="failed" if failed else None)
    for src in previous:
        chart.edge(src, done)


def _handler(detail: str) -> tuple[str, str]:
    """``to error handler fixer (fatal)`` → (``fixer``, ``fatal``)."""
    match = re.fullmatch(rf"{ERROR_HANDOFF}(.+) \((\w+)\)", detail)
    return (match.group(1), match.group(2)) if match else (detail, "")


def _outcome(entries: list[TraceEntry], handlers: dict[str, str]) -> tuple[str, bool]:
    """How an event ended, from its lines: (label, whether it failed)."""
    letter = next((e for e in entries if e.action == "dead-lettered"), None)
    if letter is not None:
        reason = re.search(r" \(([^()]*)\)", letter.detail)
        return "dead letter" + (f"\n{reason.group(1)}" if reason else ""), True
    if not entries:
        return "queued", False
    ended = {
        (e.agent, e.batch) for e in entries if e.action in ("completed", "failed", "timed out")
    }
    if any(e.action == "started" and (e.agent, e.batch) not in ended for e in entries):
        return "running", False
    handled = [e.agent for e in entries if e.agent in handlers and e.action == "completed"]
    if handled:
        return f"handled by {handled[-1]}", False
    if any(e.action in ("failed", "timed out") and not e.topic for e in entries):
        return "failed", True
    return "completed", False
