"""What a session hands on (workflows/session.py): the input its next run starts from when it
continues as new, and the summary a closed session returns for whoever reopens it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models.session import InFlight, SessionState, SessionSummary, SessionView
    from agentflow.workflows._session_queue import EventBook

if TYPE_CHECKING:
    from agentflow.workflows._stream import RunStream


def next_run_state(
    book: EventBook, context: dict[str, Any], in_flight: InFlight | None,
    last_event_at: datetime | None, stream: RunStream,
) -> SessionState:  # fmt: skip
    """The next run's input: the queue and remembered ids (only the configs still needed),
    the context, the event it was running if any, and the live stream's recent items."""
    carried = book.carry(context)
    carried.in_flight = in_flight
    carried.last_event_at = last_event_at
    carried.stream = stream.state()
    return carried


def closed_summary(view: SessionView, book: EventBook) -> SessionSummary:
    """What a closed session returns: its last view and what a reopened one goes on from."""
    return SessionSummary(view=view, seen=list(book.seen), next_seq=book.next_seq,
                          recent=book.carried_outcomes())  # fmt: skip
