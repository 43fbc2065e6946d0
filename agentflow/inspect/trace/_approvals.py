"""Approval lines of a trace: each change of a run's approvals is a memo upsert, recorded as a
``WorkflowPropertiesModified`` history event (workflows/_approval.py); its ``agentflow_approval``
field is the approval as it then was, waiting or decided (who, when, why)."""

from __future__ import annotations

from typing import Literal, NamedTuple

from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import DataConverter

from agentflow.models.approval import Approval
from agentflow.names import CHANGE_MEMO

ApprovalAction = Literal["waiting", "approved", "rejected", "timed out"]
# The trace's action for each approval status.
ACTIONS: dict[str, ApprovalAction] = {"waiting": "waiting", "approved": "approved",
                                      "rejected": "rejected", "timed_out": "timed out"}  # fmt: skip


class ApprovalLine(NamedTuple):
    agent: str
    action: ApprovalAction
    event_id: str
    detail: str


async def approval_line(converter: DataConverter, event: HistoryEvent) -> ApprovalLine | None:
    """The trace line of a ``WorkflowPropertiesModified`` event, None if it is not about an
    approval."""
    fields = event.workflow_properties_modified_event_attributes.upserted_memo.fields
    if CHANGE_MEMO not in fields:
        return None
    [approval] = await converter.decode([fields[CHANGE_MEMO]], [Approval])
    return ApprovalLine(approval.agent, ACTIONS[approval.status], approval.event_id,
                        describe(approval))  # fmt: skip


def describe(approval: Approval) -> str:
    """``approval = "before"`` (waiting), or ``by alice: looks fine`` (decided)."""
    if approval.status == "waiting":
        until = ""
        if approval.timeout_at is not None:
            at = approval.timeout_at.isoformat(timespec="seconds")
            until = f"; {approval.on_timeout} at {at}"
        return f"{approval.reason}{until} [{approval.id}]"
    comment = f": {approval.comment}" if approval.comment else ""
    return f"{approval.point} approval by {approval.decided_by}{comment} [{approval.id}]"
