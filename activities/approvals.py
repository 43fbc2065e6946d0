"""The agent activity's side of approvals: a handler's ApprovalRequired becomes the call's
output (not a failure: nothing is retried, the run waits for a person), and a call that runs
after an approval tells its handler who approved, in ``event.metadata``."""

from __future__ import annotations

from datetime import datetime, timezone

import pydantic_core
from temporalio.exceptions import ApplicationError

from agentflow.errors import ApprovalRequired
from agentflow.limits import data_problem, shorten
from agentflow.models.approval import MAX_APPROVAL_DATA_BYTES, MAX_REASON_CHARS, ApprovalAsk
from agentflow.models.flow import AgentInput, AgentOutput, Event


def approved_event(request: AgentInput) -> Event:
    """The event the handler gets: its target, and the approval this call runs after."""
    update: dict[str, object] = {"target_agent": request.agent}
    approval = request.approval
    if approval is not None:
        update["metadata"] = {
            **request.event.metadata, "approval": approval.status,
            "approved_by": approval.decided_by or "", "approval_comment": approval.comment,
            "approval_reason": approval.reason,
        }  # fmt: skip
    return request.event.model_copy(update=update)


def asked_output(
    request: AgentInput, asked: ApprovalRequired, started_at: datetime, attempt: int
) -> AgentOutput:
    """The call's output when its handler asks for approval: the state it got, unchanged."""
    data, reason = asked.data, str(asked.reason or "its handler asks")
    problem = data_problem({"reason": reason, "data": data}, root="ApprovalRequired")
    size = 0 if problem else len(pydantic_core.to_json(data))
    if problem or size > MAX_APPROVAL_DATA_BYTES:
        why = problem or (
            f"ApprovalRequired.data is {size / 1024:.1f} KB; at most "
            f"{MAX_APPROVAL_DATA_BYTES // 1024} KB (it is shown to whoever decides and kept in "
            "the run's memo): pass a reference to large data"
        )
        raise ApplicationError(
            f"agent {request.agent!r} asked for approval with bad data: {why}",
            {"attempt": attempt}, type="AgentOutputError", non_retryable=True,
        )  # fmt: skip
    reason = shorten(reason, MAX_REASON_CHARS)
    return AgentOutput(
        state=request.state, started_at=started_at, ended_at=datetime.now(timezone.utc),
        attempt=attempt, approval_required=ApprovalAsk(reason=reason, data=data),
    )  # fmt: skip
