"""The approvals of one workflow run and the ``decide`` Update that settles them (the waiting
itself is ``Approvals`` in workflows/_approval.py, whose docstring says why it is built so)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from agentflow.models.approval import (
        MAX_BY_CHARS,
        MAX_COMMENT_CHARS,
        Approval,
        ApprovalDecision,
    )
    from agentflow.names import APPROVAL, APPROVALS_QUERY, CHANGE_MEMO, DECIDE_UPDATE, WAITING_MEMO

_OUTCOME = {"approve": "approved", "reject": "rejected", "fail": "timed_out"}


class ApprovalDesk:
    """The approvals of one workflow run (a flow run, or a session across its events): those
    waiting, and those decided, so that a second decision gets a clear answer."""

    def __init__(self) -> None:
        self.waiting: dict[str, Approval] = {}
        self.decided: dict[str, Approval] = {}
        self.asked = 0

    @staticmethod
    def of(instance: object) -> ApprovalDesk:
        """The desk of a workflow instance (FlowRun and the Update handler share it)."""
        desk = getattr(instance, "_agentflow_approvals", None)
        if not isinstance(desk, ApprovalDesk):
            desk = ApprovalDesk()
            setattr(instance, "_agentflow_approvals", desk)  # noqa: B010 - any workflow class
        return desk

    def open(self) -> list[Approval]:
        return [a for key, a in self.waiting.items() if key not in self.decided]

    def find(self, decision: ApprovalDecision) -> Approval:
        """The waiting approval ``decision`` is for; ValueError saying why there is none."""
        if len(decision.by) > MAX_BY_CHARS or len(decision.comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"--by takes at most {MAX_BY_CHARS} characters and --comment "
                             f"(--reason) at most {MAX_COMMENT_CHARS}")  # fmt: skip
        waiting = self.open()
        found = [a for a in waiting if decision.agent in (None, a.agent, a.id)]
        if len(found) == 1:
            return found[0]
        if found:
            ids = ", ".join(f"{a.id} ({a.agent})" for a in found)
            raise ValueError(f"{len(found)} approvals wait in this run: {ids}; name one with "
                             "--agent (an agent or an approval id)")  # fmt: skip
        wanted = decision.agent
        why = (f"agent {wanted!r} is not waiting for approval" if wanted
               else "no agent waits for approval in this run")  # fmt: skip
        past = [a for a in self.decided.values() if wanted in (None, a.agent, a.id)]
        if past:
            last = past[-1]
            when = last.decided_at.isoformat() if last.decided_at else ""
            why += (f"; its last approval ({last.id}) was {last.status.replace('_', ' ')} by "
                    f"{last.decided_by} at {when}")  # fmt: skip
        if waiting:
            why += "; waiting: " + ", ".join(a.agent for a in waiting)
        raise ValueError(why)

    def decide(self, decision: ApprovalDecision) -> Approval:
        try:
            waiting = self.find(decision)
        except ValueError as err:  # decided meanwhile: the validator saw it open
            raise ApplicationError(str(err), type="ApprovalNotWaiting") from None
        decided = waiting.model_copy(update={
            "status": "approved" if decision.approve else "rejected",
            "decided_by": decision.by or "unknown", "decided_at": workflow.now(),
            "comment": decision.comment,
        })  # fmt: skip
        self.decided[waiting.id] = decided
        return decided

    def time_out(self, waiting: Approval, seconds: float) -> Approval:
        decided = waiting.model_copy(update={
            "status": _OUTCOME[waiting.on_timeout], "decided_by": "timeout",
            "decided_at": workflow.now(), "timed_out": True,
            "comment": f"nobody decided within {seconds:g}s "
                       f'(on_timeout = "{waiting.on_timeout}")',
        })  # fmt: skip
        self.decided[waiting.id] = decided
        return decided

    def publish(self, change: Approval) -> None:
        """Record ``change`` where clients look: the search attribute names the agents that
        wait, the memo holds them (and the change, a trace line), the UI's details say it."""
        waiting = list(self.waiting.values())
        agents = sorted({a.agent for a in waiting})
        workflow.upsert_search_attributes(
            [APPROVAL.value_set(agents) if agents else APPROVAL.value_unset()]
        )
        workflow.upsert_memo({WAITING_MEMO: waiting or None, CHANGE_MEMO: change})
        if change.status == "waiting":
            details = (f"waiting for approval of **{change.agent}** ({change.reason}); decide "
                       f"with `agentflow approve|reject {workflow.info().workflow_id} --agent "
                       f"{change.agent}`")  # fmt: skip
        else:
            details = (f"approval of **{change.agent}** {change.status.replace('_', ' ')} by "
                       f"{change.decided_by}")  # fmt: skip
        workflow.set_current_details(f"**{change.flow}**: {details}")


class ApprovalHandlers:
    """Mixin of every workflow that runs agents: the ``decide`` Update (with its validator)
    and the ``approvals`` query. The waiting is ``Approvals``, held by FlowRun."""

    @workflow.update(name=DECIDE_UPDATE)
    def decide_approval(self, decision: ApprovalDecision) -> Approval:
        return ApprovalDesk.of(self).decide(decision)

    @decide_approval.validator
    def _check_decision(self, decision: ApprovalDecision) -> None:
        # Raising here turns the Update down before it is recorded in history.
        ApprovalDesk.of(self).find(decision)

    @workflow.query(name=APPROVALS_QUERY)
    def waiting_approvals(self) -> list[Approval]:
        return ApprovalDesk.of(self).open()
