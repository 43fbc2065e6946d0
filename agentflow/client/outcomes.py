"""What became of an emitted event: ``EmitHandle`` (its outcome and result), waiting for an
outcome across the session's continue-as-new (``event_outcome``), and a closed session's
final summary (``closed_summary``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from agentflow.client import visibility
from agentflow.errors import AgentflowError
from agentflow.models.flow import FlowResult
from agentflow.models.session import EventOutcome, SessionSummary
from agentflow.names import EVENT_RESULT_UPDATE

# How long a client waits between asking a session that was continuing as new again.
MOVED_RETRY_SECONDS = 0.05


class EventDeadLetteredError(AgentflowError):
    """The event could not be processed; ``outcome.dead_letter_id`` names its dead letter."""

    def __init__(self, outcome: EventOutcome) -> None:
        super().__init__(
            f"event {outcome.event_id or '(unreadable)'} was dead-lettered "
            f"({outcome.reason}): {outcome.error or ''} [dead letter {outcome.dead_letter_id}]"
        )
        self.outcome = outcome


@dataclass
class EmitHandle:
    """An emitted event: durably recorded in its session, processed in its turn."""

    event_id: str
    session_id: str
    workflow_id: str
    client: Client
    outcome_now: EventOutcome | None = None

    async def outcome(self) -> EventOutcome:
        """Wait until the event is processed or dead-lettered (never raises for either)."""
        if self.outcome_now is not None and self.outcome_now.status != "moved":
            return self.outcome_now
        return await event_outcome(self.client, self.workflow_id, self.event_id)

    async def result(self) -> FlowResult:
        """The event's FlowResult; EventDeadLetteredError if it went to dead letters."""
        outcome = await self.outcome()
        if outcome.status == "dead_lettered":
            raise EventDeadLetteredError(outcome)
        if outcome.result is None:
            detail = outcome.reason or (
                "its result is no longer held by the session (it keeps the last 100 outcomes, "
                "and their results as far as 256 KB go); see `agentflow trace --session "
                f"{self.session_id}`"
            )
            raise AgentflowError(
                f"event {self.event_id} of session {self.session_id}: {outcome.status}: {detail}"
            )
        return outcome.result


async def closed_summary(client: Client, workflow_id: str) -> SessionSummary:
    """What a session that ended returned: its view, remembered ids and recent outcomes
    (AgentflowError if it ended other than by completing)."""
    handle = client.get_workflow_handle(workflow_id, result_type=SessionSummary)
    description = await handle.describe()
    if description.status != WorkflowExecutionStatus.COMPLETED:
        status = visibility.status_name(description.status)
        raise AgentflowError(
            f"session workflow {handle.id} ended as {status}, so its context cannot be carried "
            "over; terminate or delete it to start the session afresh"
        )
    summary: SessionSummary = await handle.result()
    return summary


async def event_outcome(client: Client, workflow_id: str, event_id: str) -> EventOutcome:
    """Wait for an event's outcome, following the session across continue-as-new."""
    while True:
        handle = client.get_workflow_handle(workflow_id)
        try:
            outcome: EventOutcome = await handle.execute_update(
                EVENT_RESULT_UPDATE, event_id, result_type=EventOutcome
            )
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            # The wait was cut off (the server restarted, or its long poll timed out): asking
            # for an outcome changes nothing in the session, so ask again.
            outcome = EventOutcome(event_id=event_id, session_id="", status="moved")
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # Between runs (continue-as-new), or the session has closed.
            closed = await _closed_outcome(client, workflow_id, event_id)
            if closed is not None:
                return closed
            outcome = EventOutcome(event_id=event_id, session_id="", status="moved")
        if outcome.status != "moved":
            return outcome
        await asyncio.sleep(MOVED_RETRY_SECONDS)


async def _closed_outcome(client: Client, workflow_id: str, event_id: str) -> EventOutcome | None:
    description = await client.get_workflow_handle(workflow_id).describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        return None
    summary = await closed_summary(client, workflow_id)
    for outcome in summary.recent:
        if outcome.event_id == event_id:
            return outcome
    return EventOutcome(event_id=event_id, session_id=summary.view.session_id, status="unknown",
                        reason="the session has closed and no longer lists this event")  # fmt: skip
