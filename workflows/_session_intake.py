"""How an emitted event enters a session (workflows/session.py): read from its raw payload,
checked to be for the session's flow, then queued, or dead-lettered when it cannot be read
or the queue is full."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from agentflow.models.session import EmitRequest
    from agentflow.workflows._letters import Letters
    from agentflow.workflows._session_queue import EventBook


def accept(raw: RawValue, flow: str, book: EventBook, letters: Letters) -> str | None:
    """Queue an emitted event (or dead-letter it); its id, None if it cannot be read."""
    try:
        request = workflow.payload_converter().from_payload(raw.payload, EmitRequest)
        if request.config.name != flow:
            raise ValueError(f"it is for flow {request.config.name!r}")
    except Exception as err:
        book.counts.emitted += 1
        letters.unreadable(raw, err)
        return None
    accepted = book.accept(request, workflow.now())
    if accepted == "full":
        letters.queue_full(request, book.state.max_queued_events)
    return request.event.id
