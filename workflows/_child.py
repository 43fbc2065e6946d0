"""An agent that is a whole flow (``flow = "flows/x.toml"``) runs as a child workflow.

The child is the nested flow's own mode workflow, with its own history, on the parent's task
queue; its config is the one pinned in the parent's snapshot (``FlowConfig.nested``). The
agent's event and state go in; the child's final state comes back as the agent's output, and
its failure is the agent's failure (so ``[error_routing]`` applies as to any agent).

Deterministic code only. The child's id is the parent's workflow id and the call's activity
id (``PARENT/2-research``), so a replay issues the same command and the id says where the
child came from. Cancelling (or terminating) the parent cancels the child: the parent close
policy asks for it, and a cancelled step waits for the child to finish cancelling.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    TimeoutError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig
    from agentflow.models import attributes
    from agentflow.models.flow import AgentInput, AgentOutput, FlowInput, FlowResult
    from agentflow.names import MODE_WORKFLOWS

# Since this patch a cancelled run ends as cancelled (it used to fail: "agent X failed:
# Cancelled"), so a child flow whose parent is cancelled shows as cancelled too.
CANCELLED_PATCH = "cancelled-runs-end-cancelled"
# Temporal refuses workflow ids over 1,000 bytes; deep nesting of long names could reach it.
MAX_CHILD_ID_BYTES = 1000
# Meta keys the child already acted on: passing them on would publish its topics twice.
CHILD_ONLY_META = ("publish", "publish_key")


def child_workflow_id(parent_id: str, activity_id: str) -> str:
    """``PARENT/ACTIVITY_ID``, or (too long) a shortened parent id plus a digest of it."""
    child_id = f"{parent_id}/{activity_id}"
    if len(child_id.encode()) <= MAX_CHILD_ID_BYTES:
        return child_id
    digest = hashlib.sha256(child_id.encode()).hexdigest()[:16]
    return f"{parent_id.encode()[:400].decode(errors='ignore')}~{digest}/{activity_id[:200]}"


async def run_child_flow(
    parent: FlowConfig, request: AgentInput, activity_id: str, time_left: float | None
) -> AgentOutput:
    """Run agent ``request.agent``'s nested flow to its end, as the agent's output.

    Raises a non-retryable ApplicationError (the agent's failure: the child's error and, as its
    type, the failed inner agent's error type) when the child fails or times out.
    """
    child = parent.nested[request.agent]
    info = workflow.info()
    # The child picks its own first agent (entry_agent, ...): the parent's target is not its.
    event = request.event.model_copy(update={"target_agent": ""})
    seconds = child.orchestration.timeout_seconds
    if time_left is not None:
        seconds = min(seconds, time_left)
    started = workflow.now()
    try:
        result: FlowResult = await workflow.execute_child_workflow(
            MODE_WORKFLOWS[child.mode],
            FlowInput(config=child, event=event, state=request.state),
            id=child_workflow_id(info.workflow_id, activity_id),
            result_type=FlowResult,
            execution_timeout=timedelta(seconds=seconds),
            task_timeout=timedelta(seconds=child.orchestration.workflow_task_timeout_seconds),
            parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
            search_attributes=attributes.search_attributes(child, event.session_id or None),
            static_summary=f"{child.name} · {child.mode} · agent {request.agent} of "
            f"{parent.name} ({info.workflow_id})",
            static_details=attributes.static_details(child, event.session_id or None),
        )
    except ChildWorkflowError as err:
        if run_cancelled(err):
            raise asyncio.CancelledError() from err  # the parent was cancelled: it ends so too
        raise _agent_failure(child, err) from err
    state = result.state.model_copy(
        update={"meta": {k: v for k, v in result.state.meta.items() if k not in CHILD_ONLY_META}}
    )
    # What the child's LLM agents used counts as this agent's usage (so the parent's sum).
    return AgentOutput(state=state, started_at=started, ended_at=workflow.now(), attempt=1,
                       usage=result.usage)  # fmt: skip


def run_cancelled(err: FailureError) -> bool:
    """Whether ``err`` (an agent's or a child flow's failure) is this run being cancelled, so
    the run should end cancelled rather than fail (runs from before the patch failed)."""
    cause = err.cause if isinstance(err, (ActivityError, ChildWorkflowError)) else err
    if workflow.cancellation_reason() is None or not isinstance(cause, CancelledError):
        return False
    return workflow.patched(CANCELLED_PATCH)


def _agent_failure(child: FlowConfig, err: ChildWorkflowError) -> ApplicationError:
    """The child's failure as the agent's: its message, and the failed inner agent's type
    (FatalError, Timeout, ...) so ``[error_routing]`` sorts it like that agent's failure."""
    cause = err.cause
    kind = "FlowFailed"
    details: dict[str, object] = {"attempt": 1}
    if isinstance(cause, ApplicationError):
        partial = _partial_result(cause)
        failed = [r for r in partial.results if r.status == "failed"] if partial else []
        kind = (failed[-1].error_type if failed else None) or "FlowFailed"
        if partial is not None and partial.usage:  # what it used before it failed counts
            details["usage"] = partial.usage.model_dump()
    elif isinstance(cause, TimeoutError):
        kind = "Timeout"
    elif isinstance(cause, CancelledError):
        kind = "Canceled"
    message = cause.message if isinstance(cause, FailureError) else str(cause or err)
    return ApplicationError(
        f"flow {child.name!r} ({child.mode}) failed: {message}",
        details,
        type=kind,
        non_retryable=True,
    )


def _partial_result(cause: ApplicationError) -> FlowResult | None:
    """The partial FlowResult a failed flow carries in its details (a dict once decoded)."""
    if cause.type != "FlowFailed" or not cause.details:
        return None
    try:
        return FlowResult.model_validate(cause.details[0])
    except ValueError:
        return None
