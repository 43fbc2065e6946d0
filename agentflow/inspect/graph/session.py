"""The Mermaid graph of a session's latest events (``agentflow graph FLOW:session:S``): one
box per event with its agent steps (drawn as a run's are, a flow agent's child flow a box
inside it) and how the event ended."""

from __future__ import annotations

import re

from agentflow.inspect.graph.mermaid import Mermaid
from agentflow.inspect.graph.run import ENDS, Nested, split_nested, step_node, steps
from agentflow.inspect.trace.read import ERROR_HANDOFF, HOOKS, TraceEntry

# A session graph draws this many of the session's latest events (it may hold thousands).
SESSION_EVENTS = 20


def session_graph(entries: list[TraceEntry], last: int = SESSION_EVENTS) -> str:
    """A session's events in the order it processed them (then those still queued), the last
    ``last`` of them: one box per event with its agent steps and how it ended (completed,
    handled by an error handler, dead-lettered, ...)."""
    top, nested = split_nested(entries)
    lines: dict[str, list[TraceEntry]] = {}
    emitted: dict[str, TraceEntry] = {}
    for entry in top:
        if not entry.event_id:
            continue
        if entry.action == "emitted":
            emitted.setdefault(entry.event_id, entry)
        else:
            lines.setdefault(entry.event_id, []).append(entry)
    order = [*lines, *(event_id for event_id in emitted if event_id not in lines)]
    shown = order[-last:] if last > 0 else []
    started = next((e for e in top if not e.event_id and e.action == "started"), None)
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
        with chart.subgraph(key, title, direction="LR"):
            _event_path(chart, key, lines.get(event_id, []), nested)
        chart.edge(previous, key)
        previous = key
    return chart.render()


def _event_path(chart: Mermaid, prefix: str, entries: list[TraceEntry], nested: Nested) -> None:
    """One event's agent steps (parallel ones side by side) and its outcome; node keys start
    with ``prefix``."""
    routed = [e for e in entries if e.action == "handed off" and e.detail.startswith(ERROR_HANDOFF)]
    handlers = dict(_handler(e.detail) for e in routed)
    agent_lines = [e for e in entries if e.agent != HOOKS and not e.topic and e not in routed]
    previous: list[str] = []
    for number, batch in enumerate(steps(agent_lines, nested), start=1):
        if isinstance(batch, str):
            continue  # a loop continued as new mid-event: its steps go on
        keys = [f"{prefix}_step{number}_{n}" for n in range(len(batch))]
        for key, step in zip(keys, batch, strict=True):
            step_node(chart, key, step, nested)
        label = next((f"error handler ({handlers[s.agent]})" for s in batch
                      if s.agent in handlers), "")  # fmt: skip
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
    ended = {(e.agent, e.batch) for e in entries if e.action in ENDS}
    if any(e.action == "started" and (e.agent, e.batch) not in ended for e in entries):
        return "running", False
    handled = [e.agent for e in entries if e.agent in handlers and e.action == "completed"]
    if handled:
        return f"handled by {handled[-1]}", False
    if any(e.action in ("failed", "timed out") and not e.topic for e in entries):
        return "failed", True
    return "completed", False
