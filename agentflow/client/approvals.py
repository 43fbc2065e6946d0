"""Approvals from a client: decide them, and find the ones that wait.

A decision is the ``decide`` Update of the run (or session) whose agent waits, so any Temporal
client can send it knowing only the workflow id (a stateless web backend included); a worker
must run to answer it. The run's validator turns down a decision for an agent that is not
waiting, or was decided already, and then nothing is recorded. Finding waiting approvals reads
only visibility (the ``AgentflowApproval`` search attribute) and the runs' memos, so it works
with no worker running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from agentflow.client import visibility
from agentflow.client.dead_letters import default_actor
from agentflow.errors import AgentflowError, ConfigError, NotFoundError
from agentflow.models.approval import MAX_BY_CHARS, MAX_COMMENT_CHARS, Approval, ApprovalDecision
from agentflow.names import DECIDE_UPDATE, WAITING_MEMO

# How long a decision waits for a worker to answer before giving up with a clear message.
DECISION_TIMEOUT_SECONDS = 20.0


class ApprovalDecisionError(AgentflowError):
    """The run turned the decision down (nothing waits, or it was decided already); the
    message says why. Nothing was recorded."""


class PendingApproval(Approval):
    """An approval that waits, and the workflow (a run or a session) it waits in."""

    workflow_id: str
    run_id: str


async def pending(
    client: Client, session: str | None = None, flow: str | None = None, limit: int | None = None
) -> AsyncIterator[PendingApproval]:
    """Every approval that waits, across runs and sessions, newest run first."""
    query = visibility.pending_query(session, flow)
    try:
        async for execution in client.list_workflows(query, limit=limit):
            memo = await execution.memo()
            for waiting in memo.get(WAITING_MEMO) or []:
                yield PendingApproval.model_validate(
                    {**waiting, "workflow_id": execution.id, "run_id": execution.run_id}
                )
    except RPCError as err:
        raise visibility.missing_attribute_error(err, client.namespace) or err from None


async def waiting_in_session(client: Client, session: str) -> str:
    """The workflow id of the one run (or session workflow) of ``session`` that waits."""
    ids = sorted({row.workflow_id async for row in pending(client, session=session)})
    if not ids:
        raise AgentflowError(f"nothing in session {session!r} waits for approval "
                             "(agentflow pending lists what waits)")  # fmt: skip
    if len(ids) > 1:
        raise AgentflowError(f"{len(ids)} runs of session {session!r} wait for approval: "
                             f"{', '.join(ids)}; give the workflow id of one")  # fmt: skip
    return ids[0]


def decision(
    approve: bool, agent: str | None = None, by: str | None = None, comment: str | None = None
) -> ApprovalDecision:
    """A decision checked before it is sent (ConfigError: bad input, exit 2)."""
    by = default_actor() if by is None else by
    comment = comment or ""
    if not by.strip() or len(by) > MAX_BY_CHARS:
        raise ConfigError(f"--by: give a name of 1 to {MAX_BY_CHARS} characters")
    if len(comment) > MAX_COMMENT_CHARS:
        flag = "--comment" if approve else "--reason"
        raise ConfigError(f"{flag}: at most {MAX_COMMENT_CHARS} characters, got {len(comment)}")
    if not approve and not comment.strip():
        raise ConfigError("--reason: say why the agent is rejected (it goes into the run)")
    return ApprovalDecision(approve=approve, agent=agent or None, by=by, comment=comment)


async def decide(
    client: Client,
    workflow_id: str,
    request: ApprovalDecision,
    *,
    timeout: float = DECISION_TIMEOUT_SECONDS,
) -> Approval:
    """Send ``request`` to the run or session ``workflow_id``; the decided approval.

    ApprovalDecisionError when the run turns it down; AgentflowError when there is no such
    running workflow or no worker answers within ``timeout`` seconds."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"no run or session with workflow id {workflow_id!r}") from None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        status = visibility.status_name(description.status)
        raise ApprovalDecisionError(f"{workflow_id} is {status}: nothing in it waits for "
                                    "approval")  # fmt: skip
    queue, what = description.task_queue, f"record the decision in {workflow_id}"
    await visibility.require_workers(client, queue, what)
    call = handle.execute_update(DECIDE_UPDATE, request, result_type=Approval)
    try:
        approval: Approval = await visibility.worker_answer(call, queue, what, timeout)
    except WorkflowUpdateFailedError as err:  # the validator (or the handler) said no
        cause = err.cause
        message = getattr(cause, "message", None) or str(cause or err)
        raise ApprovalDecisionError(f"{workflow_id}: {message}") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # it ended since we looked (a decision won)
            raise ApprovalDecisionError(f"{workflow_id} ended before the decision arrived: "
                                        "nothing in it waits any more") from None  # fmt: skip
        raise
    return approval
