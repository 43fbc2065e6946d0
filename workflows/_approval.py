"""People in the loop: an agent call that waits for a person's decision.

Why it is built this way:

- The wait is ``workflow.wait_condition`` (with a timer when the agent has
  ``approval_timeout_seconds``): the run holds no worker slot while it waits, and a worker that
  starts later rebuilds the wait from history.
- A person decides with the ``decide`` Update (``ApprovalHandlers``, a mixin of every workflow
  that runs agents). Its validator turns down a decision for an approval that is not waiting,
  or was decided already, before anything is recorded; the handler records one decision per
  approval at most, so of an approve and a reject sent at once exactly one wins.
- While an approval waits, the run's ``AgentflowApproval`` search attribute names the agent and
  its memo holds the approval, so ``agentflow pending`` and the UI find it with no worker
  running; every memo change is a history event, and the trace makes a line of each.
- Nothing here runs for an agent without ``approval`` whose handler never asks: such runs issue
  the commands they always did, and the golden histories replay unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import pydantic_core

    from agentflow.models.approval import (
        Approval,
        ApprovalAsk,
        ApprovalPoint,
    )
    from agentflow.models.flow import AgentResult, State
    from agentflow.workflows._failures import StepFailed
    from agentflow.workflows._run import Run


# A handler that asks again after each approval of the same call is stopped after this many.
MAX_HANDLER_ASKS = 5
# The output an "after" approval shows the person (in the memo): its changed data up to this.
PREVIEW_BYTES = 4096


with workflow.unsafe.imports_passed_through():
    from agentflow.workflows._approval_desk import ApprovalDesk, ApprovalHandlers

__all__ = ["ApprovalDesk", "ApprovalHandlers", "Approvals", "refused_result"]


class Approvals:
    """Where one run's agent calls wait for approval (``FlowRun.invoke`` calls these). A
    rejection raises StepFailed, like any agent failure, so error routing takes it."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.desk = ApprovalDesk.of(workflow.instance())

    async def before(self, agent: str) -> Approval | None:
        """An ``approval = "before"`` agent waits here before it runs."""
        if self.run.config.agents[agent].approval != "before":
            return None
        return self._passed(await self._ask(agent, "before", 'approval = "before"', {}))

    async def after(self, agent: str, output: State, result: AgentResult) -> AgentResult:
        """An ``approval = "after"`` agent's output waits here before it flows on."""
        if self.run.config.agents[agent].approval != "after":
            return result
        preview: dict[str, Any] = {"changed_keys": result.changed_keys}
        changed = {key: output.data[key] for key in result.changed_keys if key in output.data}
        if len(pydantic_core.to_json(changed)) <= PREVIEW_BYTES:
            preview["output"] = changed
        approval = await self._ask(agent, "after", 'approval = "after"', preview)
        return result.model_copy(update={"approval": self._passed(approval, result)})

    async def asked(self, agent: str, ask: ApprovalAsk, previous: Approval | None) -> Approval:
        """The handler raised or returned ApprovalRequired: once approved, it runs again."""
        asks = previous.asks + 1 if previous is not None and previous.point == "handler" else 1
        if asks > MAX_HANDLER_ASKS:
            now = workflow.now()
            raise StepFailed(AgentResult(
                agent=agent, status="failed", started_at=now, ended_at=now,
                error=f"agent {agent!r} asked for approval again after {MAX_HANDLER_ASKS} "
                "approvals in a row; it must go on once approved",
                error_type="AgentOutputError",
            ))  # fmt: skip
        return self._passed(await self._ask(agent, "handler", ask.reason, ask.data, asks))

    async def _ask(
        self, agent: str, point: ApprovalPoint, reason: str, data: dict[str, Any], asks: int = 1
    ) -> Approval:
        spec, event, desk = self.run.config.agents[agent], self.run.input.event, self.desk
        desk.asked += 1
        now = workflow.now()
        seconds = spec.approval_timeout_seconds
        waiting = Approval(
            id=f"{desk.asked}-{agent}", agent=agent, point=point, reason=reason, data=data,
            flow=self.run.config.name, event_id=event.id, session_id=event.session_id,
            asked_at=now, timeout_at=now + timedelta(seconds=seconds) if seconds else None,
            on_timeout=spec.on_timeout or "reject", asks=asks,
        )  # fmt: skip
        desk.waiting[waiting.id] = waiting
        desk.publish(waiting)
        self.run.progress.note("approval_waiting", agent, approval_id=waiting.id, point=point,
                               reason=reason, timeout_at=waiting.timeout_at)  # fmt: skip
        with contextlib.suppress(asyncio.TimeoutError):  # then the agent's on_timeout decides
            await workflow.wait_condition(
                lambda: waiting.id in desk.decided,
                timeout=timedelta(seconds=seconds) if seconds else None,
                timeout_summary=f"approval of {agent}",
            )
        decided = desk.decided.get(waiting.id) or desk.time_out(waiting, seconds or 0)
        del desk.waiting[waiting.id]
        desk.publish(decided)
        self.run.progress.note("approval_decided", agent, approval_id=decided.id,
                               status=decided.status, by=decided.decided_by,
                               comment=decided.comment)  # fmt: skip
        return decided

    def _passed(self, approval: Approval, done: AgentResult | None = None) -> Approval:
        """The approval if it was granted; else StepFailed with the agent's failed result."""
        if approval.approved:
            return approval

        raise StepFailed(refused_result(approval, done))


def refused_result(approval: Approval, done: AgentResult | None) -> AgentResult:
    """The failed AgentResult of an agent whose approval was rejected or timed out."""
    ended = approval.decided_at or workflow.now()
    started = done.started_at if done and done.started_at else approval.asked_at
    agent = approval.agent
    if approval.status == "timed_out":
        error = f"approval of {agent!r} timed out: {approval.comment}"
    else:
        by = 'on_timeout = "reject"' if approval.timed_out else approval.decided_by
        error = f"approval of {agent!r} rejected by {by}"
        error += f": {approval.comment}" if approval.comment and not approval.timed_out else ""
    return AgentResult(
        agent=agent, status="failed", attempt=done.attempt if done else 0, started_at=started,
        ended_at=ended, duration_ms=(ended - started).total_seconds() * 1000, error=error,
        error_type="ApprovalTimedOut" if approval.status == "timed_out" else "ApprovalRejected",
        approval=approval,
    )  # fmt: skip
