"""A run's trace, rebuilt from Temporal history: Temporal's history *is* the trace.

One ``TraceEntry`` per step of a run, read with ``fetch_history_events`` and decoded with the
client's (pydantic) data converter, so nothing is stored twice. Columns:

- ``history_event_id``: the Temporal history event the line comes from (``#`` in the table,
  the same number the Temporal UI shows); ``event_id``: the flow's ``Event.id``,
  shared by every line of a run and of the runs it continued as. A session runs many
  events in one workflow: each line carries its own event's id (agents' activity ids start
  with the event's arrival number, ``"7.2-agent"``, and their input names the event).
- An agent whose output sets ``meta["publish"]`` gets one ``published`` line per topic
  (``topic → subscribers``); a subscriber's lines carry the ``topic`` and ``source_event``,
  the history event of the publish it reacts to.
- Local agents (``local = true``) get lines too, from the markers the SDK records for them.

How each history event becomes lines is ``_decoder.py``; this module fetches
histories (following continue-as-new and a session's runs), filters and formats.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from agentflow.client import visibility
from agentflow.client.codec import open_failures
from agentflow.errors import AgentflowError
from agentflow.inspect.trace._decoder import (
    ERROR_HANDOFF,
    FLOW_ACTIONS,
    HOOKS,
    LOCAL_ACTIVITY_MARKER,
    Action,
    TraceEntry,
    decode_run,
)
from agentflow.names import DEAD_LETTER_WORKFLOW

# The line vocabulary (decoded in the private modules) is imported from here: graph/, tests.
__all__ = [
    "ERROR_HANDOFF",
    "FLOW_ACTIONS",
    "HOOKS",
    "LOCAL_ACTIVITY_MARKER",
    "Action",
    "TraceEntry",
    "filter_entries",
    "format_table",
    "nest_children",
    "resolve_workflow_id",
    "run_histories",
    "to_json",
    "trace",
    "trace_chain",
    "trace_session",
]


async def trace(
    client: Client,
    workflow_id: str | None = None,
    run_id: str | None = None,
    *,
    session: str | None = None,
    agent: str | None = None,
    flow_only: bool = False,
    event: str | None = None,
) -> list[TraceEntry]:
    """The trace of one run (following continue-as-new) or of a whole session."""
    if session:
        entries = await trace_session(client, session)
    elif workflow_id:
        entries = await trace_chain(client, workflow_id, run_id)
    else:
        raise AgentflowError("trace needs a workflow id or a session id")
    return filter_entries(entries, agent=agent, flow_only=flow_only, event=event)


async def trace_session(client: Client, session: str) -> list[TraceEntry]:
    """Every run with the session's search attribute, as one story in time order: the session
    workflow's runs (its continue-as-new chain, and the chain of each time it was reopened) and
    runs started with ``--session``. Dead-letter workflows are left out: each letter already is
    the ``dead-lettered`` line of the session run that wrote it."""
    chains: list[list[TraceEntry]] = []
    traced: set[tuple[str, str]] = set()
    async for execution in visibility.list_runs(client, session=session):
        if execution.workflow_type == DEAD_LETTER_WORKFLOW:
            continue
        if execution.parent_id:  # a flow agent's child flow: traced inside its parent's lines
            continue
        if (execution.id, execution.run_id) in traced:  # a run of a chain traced already
            continue
        chain = await trace_chain(client, execution.id, execution.run_id)
        traced.update((entry.workflow_id, entry.run_id) for entry in chain)
        chains.append(chain)
    # Each chain is in history order already; merging keeps that order within a chain.
    return nest_children(list(heapq.merge(*reversed(chains), key=lambda entry: entry.time)))


def nest_children(entries: list[TraceEntry]) -> list[TraceEntry]:
    """Each event that a handler or callback emitted (its emitted line names the parent)
    one level deeper than its parent event, when the parent is in ``entries`` too: every line
    of the child names the parent, and the table shows them under the parent's lines."""
    parents = {e.event_id: e.parent_event_id for e in entries
               if e.action == "emitted" and e.parent_event_id}  # fmt: skip
    present = {e.event_id for e in entries}
    levels: dict[str, int] = {}

    def level(event_id: str) -> int:
        chain = [event_id]  # the event, its parent, its parent's parent ... (no recursion)
        while chain[-1] not in levels:
            parent = parents.get(chain[-1], "")
            if not parent or parent not in present or parent in chain:
                levels[chain[-1]] = 0
                break
            chain.append(parent)
        for child, parent in zip(reversed(chain[:-1]), reversed(chain[1:]), strict=True):
            levels[child] = levels[parent] + 1
        return levels[event_id]

    return [
        e.model_copy(update={"depth": e.depth + level(e.event_id),
                             "parent_event_id": parents[e.event_id]})
        if level(e.event_id) else e
        for e in entries
    ]  # fmt: skip


def filter_entries(
    entries: Iterable[TraceEntry],
    *,
    agent: str | None = None,
    flow_only: bool = False,
    event: str | None = None,
) -> list[TraceEntry]:
    """Only ``agent``'s lines, only outcomes (``flow_only``), only one flow event's lines
    (``event``: its id, or a prefix of it such as the table's EVENT column)."""
    entries = list(entries)
    if event is not None and not any(entry.event_id == event for entry in entries):
        matching = {entry.event_id for entry in entries if entry.event_id.startswith(event)}
        event = matching.pop() if len(matching) == 1 else event
    return [
        entry
        for entry in entries
        if (agent is None or entry.agent == agent)
        and (not flow_only or not entry.agent or entry.action in FLOW_ACTIONS)
        and (event is None or entry.event_id == event)
    ]


async def resolve_workflow_id(client: Client, run: str) -> tuple[str, str | None]:
    """``RUN`` on the command line may be a workflow id or a run id (found via visibility)."""
    try:
        await client.get_workflow_handle(run).describe()
        return run, None
    except RPCError:
        pass  # not a workflow id: try it as a run id below
    async for execution in client.list_workflows(f"RunId = '{run}'", limit=1):
        return execution.id, execution.run_id
    raise AgentflowError(f"no workflow or run with id {run!r} in namespace {client.namespace}")


async def trace_chain(
    client: Client, workflow_id: str, run_id: str | None = None
) -> list[TraceEntry]:
    """Every run of a continue-as-new chain, from its first run, in order."""
    entries: list[TraceEntry] = []
    async for current, events in run_histories(client, workflow_id, run_id):
        entries += await decode_run(client, workflow_id, current, events)
    return await _with_child_flows(client, entries)


async def _with_child_flows(client: Client, entries: list[TraceEntry]) -> list[TraceEntry]:
    """Each flow agent's child workflow traced too, its lines right after the agent's started
    line and one level deeper (``depth``), so the table indents them under the agent."""
    spliced: list[TraceEntry] = []
    for entry in entries:
        spliced.append(entry)
        if entry.child_workflow_id:
            try:
                child = await trace_chain(
                    client, entry.child_workflow_id, entry.child_run_id or None
                )
            except RPCError:  # not started yet, or removed by retention: the agent's lines stay
                continue
            spliced += [line.model_copy(update={"depth": line.depth + entry.depth + 1})
                        for line in child]  # fmt: skip
    return spliced


async def run_histories(
    client: Client, workflow_id: str, run_id: str | None = None
) -> AsyncIterator[tuple[str, list[HistoryEvent]]]:
    """(run id, events) of every run of the continue-as-new chain that ``run_id`` (default:
    the latest run) belongs to, from its first run, in order."""
    first = await _history(client.get_workflow_handle(workflow_id, run_id=run_id))
    start = first[0].workflow_execution_started_event_attributes
    current = start.first_execution_run_id or run_id
    while current:
        events = await _history(client.get_workflow_handle(workflow_id, run_id=current))
        await open_failures(events, client.data_converter)  # sealed by [security]
        yield current, events
        current = _next_run(events)


async def _history(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return [event async for event in handle.fetch_history_events()]


def _next_run(events: list[HistoryEvent]) -> str | None:
    last = events[-1] if events else None
    if (
        last is not None
        and last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    ):
        return last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return None


def format_table(entries: list[TraceEntry]) -> str:
    """The trace as an aligned, readable table (one line per step). The EVENT column shows
    as much of each flow event's id as tells the events apart (at least 8 characters); a
    child event nested under its parent shows only what its id adds to the parent's
    (``~agent-1a2b3c4d.1``)."""
    shown = {e.event_id for e in entries}
    labels = {e.event_id: _label(e, shown) for e in entries}
    width = _event_width(set(labels.values()))
    header = ("TIME", "#", "EVENT", "AGENT", "ACTION", "TRY", "MS", "CHANGED", "DETAIL")
    rows = [header]
    for e in entries:
        rows.append((
            e.time.astimezone().strftime("%H:%M:%S.%f")[:-3], str(e.history_event_id),
            labels[e.event_id][:width],
            "  " * e.depth + (e.agent or ("(flow)" if e.event_id else "(session)")),
            e.action, "" if e.attempt is None else str(e.attempt),
            "" if e.duration_ms is None else f"{e.duration_ms:.1f}",
            ", ".join(e.changed_keys), e.detail,
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        (
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        ).rstrip()
        for row in rows
    )


def _label(entry: TraceEntry, shown: set[str]) -> str:
    parent = entry.parent_event_id
    if parent in shown and entry.event_id.startswith(f"{parent}~"):
        return entry.event_id[len(parent) :]
    return entry.event_id


def _event_width(ids: set[str], shortest: int = 8, longest: int = 40) -> int:
    width = shortest
    while width < longest and len({id_[:width] for id_ in ids}) < len(ids):
        width += 1
    return width


def to_json(entries: list[TraceEntry]) -> str:
    return json.dumps([entry.model_dump(mode="json") for entry in entries], ensure_ascii=False)
