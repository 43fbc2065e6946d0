"""``agentflow trace --event ID``: one published event through the bus, every delivery, and
every event those deliveries published in turn, rebuilt from Temporal history alone.

The publication's lines are in its bus shard session; the fan-out's line lists where each
delivery went (``TraceEntry.deliveries``); each delivery's lines are in the subscriber's
session; a delivery that published has a ``published`` line naming the new bus event.
"""

from __future__ import annotations

from temporalio.client import Client

from agentflow.errors import AgentflowError
from agentflow.inspect.trace.read import TraceEntry, trace_chain
from agentflow.models.bus import SHARDS, shard_session
from agentflow.names import BUS_FLOW, session_workflow_id

# A chain that publishes more than this many events is cut (a trace, not a crawl).
MAX_PUBLICATIONS = 200


class _Histories:
    """Each workflow's trace once, however many events of it are followed."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.traced: dict[str, list[TraceEntry]] = {}

    async def lines(self, workflow_id: str, event_id: str) -> list[TraceEntry]:
        if workflow_id not in self.traced:
            try:
                self.traced[workflow_id] = await trace_chain(self.client, workflow_id)
            except Exception:  # a session that never started (its worker never came)
                self.traced[workflow_id] = []
        return [line for line in self.traced[workflow_id] if line.event_id == event_id]


async def trace_event(client: Client, event_id: str) -> list[TraceEntry]:
    """The event's lines and its deliveries' lines (and their chains), in time order."""
    histories = _Histories(client)
    entries = await _publication(histories, event_id)
    if not entries:
        raise AgentflowError(
            f"event {event_id!r} is not on the bus (looked in its {SHARDS} shard sessions); "
            "for an event emitted into a session use --session S --event ID"
        )
    todo = _published(entries)
    followed = {event_id}
    while todo and len(followed) < MAX_PUBLICATIONS:
        next_id = todo.pop(0)
        if next_id not in followed:
            followed.add(next_id)
            found = await _publication(histories, next_id)
            entries += found
            todo += _published(found)
    return sorted(entries, key=lambda line: (line.time, line.history_event_id))


async def _publication(histories: _Histories, event_id: str) -> list[TraceEntry]:
    """A publication's lines in its shard, then its deliveries' lines."""
    first = shard_session(None, event_id)  # unkeyed: by its id; keyed: look in every shard
    shards = [first] + [f"shard-{n}" for n in range(SHARDS) if f"shard-{n}" != first]
    for shard in shards:
        lines = await histories.lines(session_workflow_id(BUS_FLOW, shard), event_id)
        if lines:
            break
    else:
        return []
    for line in list(lines):
        for delivery in line.deliveries:
            workflow_id = session_workflow_id(delivery["flow"], delivery["session_id"])
            lines += await histories.lines(workflow_id, delivery["event_id"])
    return lines


def _published(entries: list[TraceEntry]) -> list[str]:
    return [line.bus_event for line in entries if line.action == "published" and line.bus_event]


def event_graph(entries: list[TraceEntry]) -> str:
    """A Mermaid flowchart: each bus event, the subscribers it reached, what they published."""
    lines = ["flowchart LR"]
    ids: dict[str, str] = {}

    def node(key: str, label: str, shape: str = "[{}]") -> str:
        if key not in ids:
            ids[key] = f"n{len(ids)}"
            lines.append(f"  {ids[key]}{shape.format(_label(label))}")
        return ids[key]

    # A delivery's outcome: the last of its lines that ends something (agents included).
    outcomes: dict[tuple[str, str], str] = {}
    for line in entries:
        if line.action in ("completed", "failed", "timed out", "dead-lettered"):
            outcomes[(line.workflow_id, line.event_id)] = line.action
    for line in entries:
        if line.deliveries:
            source = node(line.event_id, f"{line.topic or 'event'} · {line.event_id}", "(({}))")
            for delivery in line.deliveries:
                workflow_id = session_workflow_id(delivery["flow"], delivery["session_id"])
                outcome = outcomes.get((workflow_id, delivery["event_id"]), "pending")
                target = node(delivery["event_id"], f"{delivery['subscriber']} · {outcome}")
                lines.append(f"  {source} --> {target}")
        if line.action == "published" and line.bus_event:
            source = node(line.event_id, line.event_id)
            target = node(line.bus_event, f"{line.topic} · {line.bus_event}", "(({}))")
            lines.append(f"  {source} -- publishes --> {target}")
    return "\n".join(lines)


def _label(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'
