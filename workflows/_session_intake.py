"""How an emitted event enters a session (workflows/session.py): read from its raw payload,
checked to be for the session's flow, then queued, or dead-lettered when it cannot be read
or the queue is full. An ``EmitByKey`` names a config the session has; for one it does not
have, the Update tells the client, which sends the config with the event, and the signal
(which gets no answer) dead-letters the event ("config unknown")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from agentflow.models.session import (
        CONFIG_UNKNOWN,
        EmitByKey,
        EmitRequest,
        EventOutcome,
        SessionState,
    )
    from agentflow.names import EMIT_BY_KEY_SIGNAL, EMIT_BY_KEY_UPDATE
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
    return _queued(request, book, letters)


class KeyedIntake:
    """Mixin of the session workflow: the ``emit_by_key`` signal and the
    ``emit_and_wait_by_key`` Update. The signal is what a client sends once it has sent this
    session the config (client/session_payloads.py); a run that lacks the key all the same (a
    reset, or more configs than a run carries) dead-letters the event, saying so. The
    Update's input names the event's config by key; for a key this run does not have it
    answers "unknown" with
    reason ``CONFIG_UNKNOWN`` (the event is not taken) and the client sends the event again
    with its config, as ``emit_and_wait``. Not a validator's refusal: a session run that had
    refused one and then ran ``workflow.patched`` code no longer replayed
    (tests/test_session_replay.py; bench/RESULTS.md, "the per-event floor")."""

    book: EventBook
    letters: Letters
    state: SessionState
    _wait: Callable[[str], Awaitable[EventOutcome]]  # the session's: the event's outcome

    @workflow.update(name=EMIT_BY_KEY_UPDATE)
    async def emit_by_key(self, request: EmitByKey) -> EventOutcome:
        event_id = self._queued_by_key(request)
        if event_id is None:
            return EventOutcome(event_id=request.event.id, session_id=self.state.session_id,
                                status="unknown", reason=CONFIG_UNKNOWN)  # fmt: skip
        return await self._wait(event_id)

    @workflow.signal(name=EMIT_BY_KEY_SIGNAL)
    def emit_by_key_signal(self, raw: RawValue) -> None:
        try:
            request = workflow.payload_converter().from_payload(raw.payload, EmitByKey)
        except Exception as err:
            self.book.counts.emitted += 1
            self.letters.unreadable(raw, err)
            return
        if self._queued_by_key(request) is not None:
            return
        if self.book.knows(request.event.id):
            self.book.counts.duplicates += 1
        else:
            self.book.counts.emitted += 1
            self.letters.config_unknown(request, self.state.flow)

    def _queued_by_key(self, request: EmitByKey) -> str | None:
        """Queue the event with the config its key names; None if this run lacks it."""
        config = self.book.configs.get(request.config_key)
        if config is None:
            return None
        full = EmitRequest(config=config, event=request.event, redrive_of=request.redrive_of)
        return _queued(full, self.book, self.letters, request.config_key)


def _queued(request: EmitRequest, book: EventBook, letters: Letters, key: str | None = None) -> str:
    accepted = book.accept(request, workflow.now(), key)
    if accepted == "full":
        letters.queue_full(request, book.state.max_queued_events)
    return request.event.id
