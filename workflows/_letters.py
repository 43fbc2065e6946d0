"""How a session turns an event it cannot process into a dead letter.

Each letter is a ``DeadLetterWorkflow`` child with a parent-close policy of ABANDON, so it
outlives the session; it is counted as dead-lettered only once the child has started, which
the server records durably. Events rejected while a signal is handled (unreadable, queue full)
wait in ``pending`` until the main loop writes them: a signal handler cannot start children.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.common import (
    RawValue,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig
    from agentflow.models.bus import BUS_REFUSALS, DENIED, PUBLISH_DENIED
    from agentflow.models.flow import FlowResult
    from agentflow.models.session import (
        DeadLetter,
        DeadLetterReason,
        EmitByKey,
        EmitRequest,
        EventOutcome,
        QueuedEvent,
        SessionCounts,
        SessionState,
    )
    from agentflow.names import FLOW, MODE, SESSION, dead_letter_workflow_id
    from agentflow.workflows._batch_letters import batch_letters
    from agentflow.workflows.dead_letter import DeadLetterWorkflow

# What is kept of an unreadable payload: enough to see what arrived.
RAW_KEPT_BYTES = 64 * 1024
# Of the error in a letter's memo: a listing line, not the whole story (`dead-letters show`).
MEMO_ERROR_CHARS = 300

Finished = Callable[[EventOutcome], None]


class Letters:
    """The dead letters of one session."""

    def __init__(self, state: SessionState, counts: SessionCounts) -> None:
        self.state, self.counts = state, counts
        self.pending: list[DeadLetter] = []

    def unreadable(self, raw: RawValue, err: Exception) -> None:
        text = raw.payload.data[:RAW_KEPT_BYTES].decode("utf-8", errors="replace")
        letter_id = f"unreadable-{workflow.uuid4()}"
        self.pending.append(self._letter(letter_id, "unreadable", raw=text,
                                         error=f"the event could not be read: {err}"))  # fmt: skip

    def queue_full(self, request: EmitRequest, limit: int) -> None:
        self.pending.append(
            self._letter(
                request.event.id, "session queue full", event=request.event,
                error=f"the session already holds {limit} queued events or 1 MB of event data "
                "(sessions.max_queued_events)", redrive_of=request.redrive_of,
            )
        )  # fmt: skip

    def config_unknown(self, request: EmitByKey, flow: str) -> None:
        """An event sent by its config's key to a run without that config (``emit_by_key``)."""
        self.pending.append(
            self._letter(
                request.event.id, "config unknown", event=request.event,
                error=f"this session run does not have the config the event names (flow "
                f"{flow!r}, key {request.config_key}), so it was not processed; redrive it "
                "(`agentflow dead-letters redrive`), which sends the config with it",
                redrive_of=request.redrive_of,
            )
        )  # fmt: skip

    async def write_pending(self, finished: Finished) -> None:
        while self.pending:
            await self._write(self.pending[0], None, finished)
            self.pending.pop(0)

    async def deadline_passed(
        self, queued: QueuedEvent, config: FlowConfig, finished: Finished
    ) -> None:
        deadline = queued.event.deadline
        letter = self._letter(
            queued.event.id, "deadline passed", event=queued.event,
            error=f"not started by its deadline {deadline.isoformat() if deadline else ''}",
            redrive_of=queued.redrive_of,
        )  # fmt: skip
        await self._write(letter, config, finished)

    async def failed(
        self,
        queued: QueuedEvent,
        config: FlowConfig,
        partial: FlowResult | None,
        message: str,
        finished: Finished,
    ) -> None:
        """An event whose flow failed after error routing, or that a hook rejected."""
        results = partial.results if partial else []
        agent = next((r for r in results if r.status == "failed" and r.topic is None), None)
        reason: DeadLetterReason = "agent failed"
        error = (partial.error if partial else None) or message
        if partial and partial.rejected_by:
            reason = "hook rejected"
        elif partial and partial.hook_failed:
            reason = "hook failed"
        elif agent and agent.error_type == PUBLISH_DENIED:
            # A publish outside the agent's `publishes`: the bus names the publisher.
            reason, error = "publish denied", queued.event.metadata.get(DENIED, error)
            agent = agent.model_copy(update={"agent": queued.event.source_agent})
        elif agent and agent.error_type in BUS_REFUSALS:
            # A `when` that failed on the event, a bad signature, a refused publisher.
            reason = BUS_REFUSALS[agent.error_type]
        letter = self._letter(
            queued.event.id, reason, event=queued.event, redrive_of=queued.redrive_of,
            error=error, failed_agent=agent.agent if agent else None,
            error_type=agent.error_type if agent else None,
            attempts=agent.attempt if agent else 0,
            state=partial.state if partial else None, result=partial,
        )  # fmt: skip
        if not await batch_letters(letter, config, self.counts, finished, start_letter):
            await self._write(letter, config, finished)

    def _letter(self, event_id: str, reason: DeadLetterReason, **fields: object) -> DeadLetter:
        flow, session = self.state.flow, self.state.session_id
        event = fields.get("event")
        return DeadLetter.model_validate(
            {
                "id": dead_letter_workflow_id(flow, session, event_id),
                "flow": flow,
                "session_id": session,
                "reason": reason,
                "dead_lettered_at": workflow.now(),
                "emitted_at": getattr(event, "timestamp", None),
                **fields,
            }
        )

    async def _write(
        self, letter: DeadLetter, config: FlowConfig | None, finished: Finished
    ) -> None:
        """Start the letter's workflow (a new id if that one is taken), then count it."""
        letter_id = await start_letter(letter, config)
        self.counts.dead_lettered += 1
        event_id = letter.event.id if letter.event else ""
        workflow.logger.warning("event %s dead-lettered as %s: %s", event_id or "(unreadable)",
                                letter_id, letter.reason)  # fmt: skip
        finished(EventOutcome(event_id=event_id, session_id=letter.session_id,
                              status="dead_lettered", dead_letter_id=letter_id,
                              reason=letter.reason, error=letter.error))  # fmt: skip


async def start_letter(letter: DeadLetter, config: FlowConfig | None) -> str:
    """Start a letter's workflow (a new id if that one is taken); the id it got. Sessions and
    failed compensations (workflows/_compensate.py) write their letters with it."""
    pairs = [
        SearchAttributePair(FLOW, letter.flow),
        SearchAttributePair(SESSION, letter.session_id),
    ]
    if config is not None:
        pairs.append(SearchAttributePair(MODE, config.mode))
    letter_id = letter.id
    while True:
        try:
            await workflow.start_child_workflow(
                DeadLetterWorkflow.run, letter.model_copy(update={"id": letter_id}),
                id=letter_id, task_queue=workflow.info().task_queue,
                # A closed letter keeps its id: the same event failing again gets a new one.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes(pairs), memo=_memo(letter),
                static_summary=f"dead letter · {letter.reason} · {letter.error or ''}"[:200],
            )  # fmt: skip
            return letter_id
        except WorkflowAlreadyStartedError:
            # The same event id was dead-lettered before (beyond the dedupe window).
            letter_id = f"{letter.id}#{workflow.uuid4().hex[:8]}"


def _memo(letter: DeadLetter) -> dict[str, str | None]:
    """What ``agentflow dead-letters list`` shows of a letter, read from visibility alone: no
    history fetch per letter, and no worker needed to answer a query."""
    return {
        "event_id": letter.event.id if letter.event else None,
        "reason": letter.reason,
        "failed_agent": letter.failed_agent,
        "error": (letter.error or "")[:MEMO_ERROR_CHARS] or None,
        "dead_lettered_at": letter.dead_lettered_at.isoformat(),
    }
