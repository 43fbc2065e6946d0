"""The Mermaid graph of the path a run took (``agentflow graph RUN``), and the agent steps
that a session's event graph (agentflow/graph_session.py) draws the same way.

A flow agent's child flow is traced into its parent's lines, one level deeper
(agentflow/trace.py); here its step becomes a subgraph holding the child's own path, drawn
like the run's, to any depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentflow.inspect.graph.mermaid import DONE, START, Mermaid
from agentflow.inspect.trace.read import TraceEntry

# (workflow, run, history event): one trace line. A flow agent's started line keys its child's.
Line = tuple[str, str, int]
Nested = dict[Line, list[TraceEntry]]
# How a step ended: "running" only for a flow agent whose child flow has not ended yet.
ENDS = ("completed", "failed", "timed out", "canceled", "terminated")
MARKS = {
    "completed": "✓", "failed": "✗ failed", "timed out": "⏱ timed out",
    "canceled": "⊘ canceled", "terminated": "⊘ terminated", "running": "… running",
}  # fmt: skip


@dataclass
class Step:
    """One agent step (or a loop's repeats of it, collapsed): where its lines came from."""

    agent: str
    attempt: int
    action: str
    origins: list[tuple[str, int]]  # the (run, history event) of each repeat's outcome
    handoff: str = ""
    # A flow agent: "flow NAME (MODE)" and its child flow's own lines (None: not a flow).
    flow: str = ""
    child: list[TraceEntry] | None = field(default=None)


def split_nested(entries: list[TraceEntry]) -> tuple[list[TraceEntry], Nested]:
    """The outermost lines, and each child flow's own lines keyed by its flow agent's started
    line (found by workflow id: a session's merged chains may interleave them). Lines of a child
    whose flow agent's line is not in ``entries`` are left out."""
    top: list[TraceEntry] = []
    nested: Nested = {}
    owner: dict[str, Line] = {}  # child workflow id -> the latest started line naming it
    for entry in entries:
        if not entry.depth:
            top.append(entry)
        elif parent := owner.get(entry.workflow_id):
            nested[parent].append(entry)
        if entry.child_workflow_id:
            owner[entry.child_workflow_id] = _line(entry)
            nested.setdefault(owner[entry.child_workflow_id], [])
    return top, nested


def run_graph(entries: list[TraceEntry]) -> str:
    """The path a run took: one node per agent step in order (repeats collapsed), parallel
    steps side by side, failures and retries marked, continue-as-new on its edge; subscriber
    steps hang off their publisher's step on dotted edges labelled with the topic; a flow
    agent's step is a subgraph of its child flow's path."""
    top, nested = split_nested(entries)
    ended = [e for e in top if not e.agent and e.action != "started"]
    outcome = ended[-1].action if ended else "running"
    started = next((e for e in top if not e.agent), None)
    chart = Mermaid()
    chart.node(START, started.detail if started else "run", "stadium")
    last = path(chart, "", top, nested, [START])
    undone = [e for e in top if e.action in ("compensated", "compensation failed")]
    if undone:  # a saga: the compensations, in the order they ran, on dashed edges back
        outcome, last = "compensated", _compensations(chart, undone, last)
    chart.node(DONE, outcome, "stadium", css="failed" if outcome != "completed" else None)
    for src in last:
        chart.edge(src, DONE)
    return chart.render()


def _compensations(chart: Mermaid, lines: list[TraceEntry], previous: list[str]) -> list[str]:
    """A "compensate" subgraph: each completed agent's compensation (last completed first),
    joined by dashed edges from the step that failed; a failed one is marked."""
    keys = [f"undo{number}" for number in range(1, len(lines) + 1)]
    with chart.subgraph("compensate", "compensate"):
        for key, e in zip(keys, lines, strict=True):
            failed = e.action == "compensation failed"
            mark = "✗ failed, dead-lettered" if failed else "↺ undone"
            chart.node(key, f"{e.agent} {mark}", css="failed" if failed else None)
    for src, dst in zip([*previous[-1:], *keys], keys, strict=False):
        chart.edge(src, dst, "compensate" if dst == keys[0] else "", dotted=True)
    return keys[-1:]


def path(
    chart: Mermaid, prefix: str, lines: list[TraceEntry], nested: Nested, previous: list[str]
) -> list[str]:
    """Draw ``lines``' steps after the nodes ``previous`` (node keys start with ``prefix``);
    return the last steps' keys."""
    label, number = "", 1
    node_of: dict[tuple[str, int], str] = {}  # (run, completed event) -> the step's node
    for batch in steps([e for e in lines if not e.topic], nested):
        if isinstance(batch, str):  # the run continued as a new run here
            label = batch
            continue
        keys = []
        for step in batch:
            keys.append(f"{prefix}step{number}")
            step_node(chart, keys[-1], step, nested)
            node_of.update(dict.fromkeys(step.origins, keys[-1]))
            number += 1
        for src in previous:
            for dst in keys:
                chart.edge(src, dst, label)
        previous, label = keys, ("hand-off" if any(step.handoff for step in batch) else "")
    _deliveries(chart, prefix, lines, nested, node_of)
    return previous


def _deliveries(
    chart: Mermaid,
    prefix: str,
    lines: list[TraceEntry],
    nested: Nested,
    node_of: dict[tuple[str, int], str],
) -> None:
    """Subscriber steps: one node per publisher, topic, agent and outcome (repeats counted;
    a flow agent's each its own). A chained subscriber hangs off the one that published to it."""
    # publisher node, topic, agent, attempt, outcome, and a flow agent's own outcome line
    Key = tuple[str, str, str, int, str, int]
    groups: dict[Key, Step] = {}
    names: dict[Key, str] = {}
    flows = _flow_starts(lines)
    for e in lines:
        publisher = node_of.get((e.run_id, e.source_event or 0))
        if not e.topic or e.action not in ENDS or not publisher:
            continue
        start = flows.get(_line(e))
        key: Key = (publisher, e.topic, e.agent, e.attempt or 1, str(e.action),
                    e.history_event_id if start else 0)  # fmt: skip
        step = groups.setdefault(key, _step(e, start, nested, []))
        step.origins.append((e.run_id, e.history_event_id))
        node_of[e.run_id, e.history_event_id] = names.setdefault(
            key, f"{prefix}delivery{len(names) + 1}"
        )
    for group, step in groups.items():
        step_node(chart, names[group], step, nested)
        chart.edge(group[0], names[group], group[1], dotted=True)


def step_node(chart: Mermaid, key: str, step: Step, nested: Nested) -> None:
    """An agent step's node, or a flow agent's subgraph holding its child flow's path."""
    times = f" x{len(step.origins)}" if len(step.origins) > 1 else ""
    retry = f"\nattempt {step.attempt}" if step.attempt > 1 else ""
    label = f"{step.agent}{times} {MARKS[step.action]}{retry}"
    if step.child is None:
        failed = step.action not in ("completed", "running")
        chart.node(key, label, css="failed" if failed else "retried" if retry else None)
        return
    with chart.subgraph(key, f"{label}\n{step.flow}"):
        if not path(chart, f"{key}/", step.child, nested, []):  # nothing ran in it (yet)
            running = step.action == "running"
            chart.node(f"{key}/empty", "no agent steps yet" if running else "no agent steps")


def steps(lines: list[TraceEntry], nested: Nested) -> list[list[Step] | str]:
    """Agent outcomes grouped by the workflow task that scheduled them (= ran in parallel);
    a flow agent whose child flow is still running is a step too."""
    out: list[list[Step] | str] = []
    batches: dict[tuple[str, int | None], list[Step]] = {}
    handoffs = {(e.run_id, e.history_event_id): e.detail for e in lines
                if e.action == "handed off"}  # fmt: skip
    flows = _flow_starts(lines)
    ending = {_line(start) for start in flows.values()}
    for entry in lines:
        if entry.action == "continued-as-new":
            out.append("continued-as-new")
        running = bool(entry.child_workflow_id) and _line(entry) not in ending
        if not entry.agent or (entry.action not in ENDS and not running):
            continue
        start = entry if running else flows.get(_line(entry))
        handoff = handoffs.get((entry.run_id, entry.history_event_id), "")
        step = _step(entry, start, nested, [(entry.run_id, entry.history_event_id)], handoff)
        key = (entry.run_id, entry.batch)
        if key in batches:
            batches[key].append(step)
            continue
        last = out[-1] if out else None
        if isinstance(last, list) and _repeats(last, step):
            last[0].origins += step.origins  # a loop: collapse
            batches[key] = last
            continue
        batches[key] = [step]
        out.append(batches[key])
    return out


def _repeats(last: list[Step], step: Step) -> bool:
    """Whether ``step`` is a loop's next plain, first-try success of the agent of ``last``."""
    if len(last) != 1 or last[0].child is not None or step.child is not None:
        return False
    before = last[0]
    same = (before.agent, before.attempt, before.action) == (step.agent, 1, "completed")
    return same and step.attempt == 1 and not (step.handoff or before.handoff)


def _step(
    entry: TraceEntry,
    start: TraceEntry | None,
    nested: Nested,
    origins: list[tuple[str, int]],
    handoff: str = "",
) -> Step:
    """The step ``entry`` ends (or, a flow agent still running, starts)."""
    action = entry.action if entry.action in ENDS else "running"
    step = Step(entry.agent, entry.attempt or 1, action, origins, handoff)
    if start is not None:
        step.flow = start.detail.removesuffix(f" as {start.child_workflow_id}")
        step.child = nested.get(_line(start), [])
    return step


def _flow_starts(lines: list[TraceEntry]) -> dict[Line, TraceEntry]:
    """Each flow agent's outcome line -> the started line that names its child workflow (the
    next outcome of the same agent, event and workflow task)."""
    waiting: dict[tuple[str, str, str, str, int | None], list[TraceEntry]] = {}
    starts: dict[Line, TraceEntry] = {}
    for entry in lines:
        call = (entry.workflow_id, entry.run_id, entry.agent, entry.event_id, entry.batch)
        if entry.child_workflow_id:
            waiting.setdefault(call, []).append(entry)
        elif entry.action in ENDS and entry.agent and waiting.get(call):
            starts[_line(entry)] = waiting[call].pop(0)
    return starts


def _line(entry: TraceEntry) -> Line:
    return entry.workflow_id, entry.run_id, entry.history_event_id
