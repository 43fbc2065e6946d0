"""A failed batch's dead letters (workflows/batcher.py): one per event of the batch, so each
can be looked at and redriven on its own, each saying which batch failed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig
    from agentflow.models.batcher import BATCH, batched_events
    from agentflow.models.flow import Event
    from agentflow.models.session import DeadLetter, EventOutcome, SessionCounts
    from agentflow.names import dead_letter_workflow_id


def split_batch(letter: DeadLetter) -> list[DeadLetter]:
    """``letter`` of a batch event, as one letter per event of the batch (none for a letter
    of any other event). The batch's state and result stay out: they hold every event."""
    events = batched_events(letter.event) if letter.event else []
    if not events:
        return []
    batch = events[0].metadata[BATCH]
    error = f"batch {batch} of {len(events)} events failed: {letter.error or letter.reason}"
    return [_one(letter, event, error) for event in events]


def _one(letter: DeadLetter, event: Event, error: str) -> DeadLetter:
    letter_id = dead_letter_workflow_id(letter.flow, letter.session_id, event.id)
    fields = {"id": letter_id, "event": event, "error": error, "state": None, "result": None}
    return letter.model_copy(update=fields)


async def batch_letters(
    letter: DeadLetter,
    config: FlowConfig,
    counts: SessionCounts,
    finished: Callable[[EventOutcome], None],
    start_letter: Callable[[DeadLetter, FlowConfig | None], Awaitable[str]],
) -> bool:
    """Write a failed batch's letters, one per event; False (nothing written) for a letter
    of any other event. The batch event itself finishes as dead-lettered. ``start_letter``:
    workflows/_letters.py's, which imports this module."""
    parts = split_batch(letter)
    for part in parts:
        letter_id = await start_letter(part, config)
        counts.dead_lettered += 1
        workflow.logger.warning("event %s of a failed batch dead-lettered as %s",
                                part.event.id if part.event else "", letter_id)  # fmt: skip
    if parts and letter.event is not None:
        finished(EventOutcome(event_id=letter.event.id, session_id=letter.session_id,
                              status="dead_lettered", reason=letter.reason,
                              error=parts[0].error))  # fmt: skip
    return bool(parts)


def refused_letter(flow: str, event: Event, error: str) -> DeadLetter:
    """The letter of a batch its session refused (larger than a Temporal payload): split by
    ``split_batch`` into one per event, as a failed batch's is."""
    return DeadLetter(id=dead_letter_workflow_id(flow, event.session_id, event.id), flow=flow,
                      session_id=event.session_id, reason="agent failed", event=event,
                      error=f"its session refused it: {error}", emitted_at=event.timestamp,
                      dead_lettered_at=workflow.now())  # fmt: skip
