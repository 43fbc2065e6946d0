"""What a session shows of itself (workflows/session.py): the ``session`` query's view and the
UI's details while it idles."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models.session import QueuedEvent, SessionState, SessionView
    from agentflow.workflows._session_queue import EventBook


def session_view(
    state: SessionState, book: EventBook, current: QueuedEvent | None, closing: str | None,
    context: dict[str, Any],
) -> SessionView:  # fmt: skip
    """The session as clients see it: what runs now, what waits, the counts and the context."""
    status = "processing" if current else "closing" if closing else "idle"
    if closing and not book and workflow.all_handlers_finished():
        status = "closed"
    return SessionView(
        flow=state.flow, session_id=state.session_id, status=status,
        current=current.event.id if current else None,
        queued=book.queued_views(),
        counts=book.counts, context=context, runs=state.runs,
        last_event_at=state.last_event_at, closed_reason=closing,
    )  # fmt: skip


def idle_details(state: SessionState, book: EventBook) -> str:
    """The UI's current details of a session waiting for events."""
    counts = book.counts
    return (
        f"**session** `{state.session_id}` ({state.flow}): idle — "
        f"{counts.processed} processed, {counts.dead_lettered} dead-lettered, "
        f"{len(book)} queued"
    )
