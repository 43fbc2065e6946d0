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

# Runs before it handed on only the configs of queued events.
KEEP_CONFIGS_PATCH = "session-keeps-recent-configs"


# A run also continues as new once its history holds this many bytes (and it has processed
# RUN_MIN_EVENTS): a burst of signals into a busy session (a bus shard) grows its history
# faster than events_per_run bounds it, and every workflow task that times out replays it all.
RUN_HISTORY_BYTES = 1024 * 1024
RUN_MIN_EVENTS = 20
# Runs before it continued as new only by events processed, or when Temporal suggested it.
HISTORY_BYTES_PATCH = "session-run-history-bytes"


def run_is_full(done_here: int, events_per_run: int) -> bool:
    """Whether this run should continue as new, having processed ``done_here`` events."""
    info = workflow.info()
    if done_here >= events_per_run or info.is_continue_as_new_suggested():
        return True
    return (
        done_here >= RUN_MIN_EVENTS
        and info.get_current_history_size() >= RUN_HISTORY_BYTES
        and workflow.patched(HISTORY_BYTES_PATCH)  # only asked once the history is large
    )


def next_run_state(
    book: EventBook, context: dict[str, Any], in_flight: InFlight | None,
    last_event_at: datetime | None, stream: RunStream,
) -> SessionState:  # fmt: skip
    """The next run's input: the queue and remembered ids, the configs still needed and the
    most recently used ones (runs before ``KEEP_CONFIGS_PATCH`` kept only the needed ones),
    the context, the event it was running if any, and the live stream's recent items."""
    carried = book.carry(context, keep_recent=workflow.patched(KEEP_CONFIGS_PATCH))
    carried.in_flight = in_flight
    carried.last_event_at = last_event_at
    carried.stream = stream.state()
    return carried


def closed_summary(view: SessionView, book: EventBook) -> SessionSummary:
    """What a closed session returns: its last view and what a reopened one goes on from."""
    return SessionSummary(view=view, seen=list(book.seen), next_seq=book.next_seq,
                          recent=book.carried_outcomes())  # fmt: skip
