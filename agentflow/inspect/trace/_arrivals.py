"""A session's arrival numbers, replayed by the trace decoder: which flow event each ``seq`` is."""

from __future__ import annotations

import itertools
from collections import OrderedDict

from agentflow.limits import MAX_SEEN_BYTES
from agentflow.models.session import SessionState


class Arrivals:
    """Which flow event each arrival number (``seq``, the ``7.`` of activity id
    ``"7.2-agent"``) is: the session's input and the events it then accepted, numbered as
    ``workflows/_session_queue.EventBook`` numbers them. Local agents need it, since their
    input (which names the event) is not in history."""

    def __init__(self, state: SessionState) -> None:
        self.next_seq = state.next_seq
        self.window = state.dedupe_window
        self.seen: OrderedDict[str, int] = OrderedDict((id_, len(id_)) for id_ in state.seen)
        self.seen_bytes = sum(self.seen.values())
        self.by_seq = {queued.seq: queued.event.id for queued in state.queue}
        if state.in_flight is not None:
            self.by_seq[state.in_flight.queued.seq] = state.in_flight.queued.event.id

    def accept(self, event_id: str) -> bool:
        """Number a new event; False for a repeated id (a duplicate, never processed)."""
        if event_id in self.seen:
            return False
        self.seen[event_id] = len(event_id)
        self.seen_bytes += len(event_id)
        while len(self.seen) > self.window or self.seen_bytes > MAX_SEEN_BYTES:
            self.seen_bytes -= self.seen.popitem(last=False)[1]
        self.by_seq[self.next_seq] = event_id
        self.next_seq += 1
        return True

    def not_queued(self, event_id: str) -> None:
        """The event was dead-lettered as "session queue full": it never got a number, so
        the events numbered after it move up one."""
        numbers = [seq for seq, id_ in self.by_seq.items() if id_ == event_id]
        if not numbers:
            return
        moved = sorted(seq for seq in self.by_seq if seq >= max(numbers))
        for seq, after in itertools.pairwise(moved):
            self.by_seq[seq] = self.by_seq[after]
        del self.by_seq[moved[-1]]
        self.next_seq -= 1
