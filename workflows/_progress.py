"""Live progress of a run: the ``progress`` query, the UI's current details, workflow logs.

Why here and not in each workflow: every mode runs its agents through ``FlowRun.invoke``, so
one object that hears "agent started" / "agent ended" serves all five modes. The query handler
is registered dynamically (``workflow.set_query_handler``), which keeps the workflow classes
unchanged. Queries and current details are not recorded as commands, so they cannot make a
replay diverge; ``workflow.logger`` skips its lines while a worker replays history.

The same object tells the run's live stream (workflows/_stream.py): every item it publishes
is appended in memory, with no command either. Other parts of the runtime (hand-offs, publishes,
approvals, nested flows) report through ``note``.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models.flow import FlowProgress
    from agentflow.models.stream import StreamItem
    from agentflow.names import PROGRESS_QUERY
    from agentflow.workflows._run import Run


class ProgressQuery:
    """The ``progress`` query's handler, registered once per workflow instance and pointed at
    the current run's ``Progress``: a session runs many events, each with its own ``Progress``,
    and registering a handler costs the SDK a ``get_type_hints`` of it (about half of a new
    ``Progress``'s time). Only the current workflow's registry is read or written."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __call__(self) -> FlowProgress:
        return self.progress.query()

    @staticmethod
    def answer_for(progress: Progress) -> None:
        handler = workflow.get_query_handler(PROGRESS_QUERY)
        if isinstance(handler, ProgressQuery):
            handler.progress = progress
        else:
            workflow.set_query_handler(PROGRESS_QUERY, ProgressQuery(progress))


class Progress:
    """Counts agent steps of one run (and of the runs it continued from)."""

    def __init__(self, run: Run) -> None:
        self._run = run
        config = run.config
        orch = config.orchestration
        planned: dict[str, int | None] = {
            "sequential": len(orch.sequential_agents),
            "collaborative": len(orch.collaborative_agents),
            "mixed": len(orch.collaborative_agents) + len(orch.sequential_agents),
            "loop": orch.max_iterations,
            "route": None,  # the agents choose the path as it runs
        }
        loop = run.input.loop
        self.snapshot = FlowProgress(
            flow=config.name,
            mode=config.mode,
            total=planned[config.mode],
            completed=loop.iterations if loop else 0,
            step=loop.iterations if loop else 0,
        )
        self._points: dict[str, str] = {}  # approval id -> where it waits (handler, ...)
        ProgressQuery.answer_for(self)
        if not run.resumed:
            total = planned[config.mode]
            self.note("flow_started", flow=config.name, mode=config.mode, total=total)

    def query(self) -> FlowProgress:
        return self.snapshot.model_copy(update={"running": list(self._run.running)})

    def started(self, agent: str, activity_id: str | None = None) -> None:
        self.snapshot.step += 1
        workflow.logger.info(
            "agent %s started (step %s)", agent, self._of_total(), extra={"agent": agent}
        )
        self._show()
        self._publish("started", agent, activity_id=activity_id, data={"step": self.snapshot.step})

    def ended(
        self,
        agent: str,
        succeeded: bool,
        *,
        activity_id: str | None = None,
        attempt: int | None = None,
        error: str | None = None,
    ) -> None:
        if succeeded:
            self.snapshot.completed += 1
        else:
            self.snapshot.failed += 1
        self.snapshot.last_agent = agent
        outcome = "completed" if succeeded else "failed"
        workflow.logger.info("agent %s %s", agent, outcome, extra={"agent": agent})
        self._show()
        data = {"error": error} if error else {}
        self._publish(outcome, agent, activity_id=activity_id, attempt=attempt, data=data)

    def finished(self, status: str, error: str | None = None) -> None:
        """The event's outcome (completed, handled or failed), the last item of a run. From
        here ``total`` counts what the run did: its agents done, failed and, of those its mode
        planned, not run (a loop's ``max_iterations`` is a cap, not a plan; route mode plans
        nothing ahead)."""
        snap = self.snapshot
        snap.total = snap.completed + snap.failed + len(self._not_run())
        self.note("flow_finished", status=status, error=error, completed=snap.completed,
                  failed=snap.failed)  # fmt: skip

    def _not_run(self) -> list[str]:
        orch = self._run.config.orchestration
        planned = {
            "sequential": orch.sequential_agents,
            "collaborative": orch.collaborative_agents,
            "mixed": [*orch.collaborative_agents, *orch.sequential_agents],
        }.get(self._run.config.mode, [])
        ran = {result.agent for result in self._run.results}
        return [agent for agent in planned if agent not in ran]

    def note(self, kind: str, agent: str | None = None, **data: Any) -> None:
        """Tell watchers something happened in this run: ``kind`` names it (``"handoff"``,
        ``"approval_waiting"``, ``"approval_decided"``, ``"published"``, ...), ``agent`` the agent
        it concerns (None for the whole run), ``data`` JSON-able details.

        Safe anywhere in workflow code: it records no command, so replay is unaffected.
        """
        workflow.logger.debug("%s %s %s", kind, agent or "-", data, extra={"agent": agent})
        if kind == "approval_waiting":
            self._asked(data.get("approval_id"), data.get("point"))
        elif kind == "approval_decided":
            self._decided(data.get("approval_id"), data.get("status"))
        self._publish(kind, agent, data=data)

    def _asked(self, approval_id: Any, point: Any) -> None:
        """An approval waits. A handler that asked did not complete: it runs again, as the
        same step, once approved."""
        self._points[str(approval_id)] = str(point)
        if point == "handler":
            self.snapshot.completed -= 1
            self.snapshot.step -= 1
            self._show()

    def _decided(self, approval_id: Any, status: Any) -> None:
        """Rejected (or timed out to a rejection): the agent failed; its output, if an
        ``after`` approval held it, no longer counts as done."""
        point = self._points.pop(str(approval_id), None)
        if status == "approved":
            return
        self.snapshot.failed += 1
        if point == "after":
            self.snapshot.completed -= 1
        elif point == "handler":  # the step it asked in ends here, failed
            self.snapshot.step += 1
        self._show()

    def _publish(
        self,
        kind: str,
        agent: str | None,
        *,
        activity_id: str | None = None,
        attempt: int | None = None,
        data: dict[str, Any],
    ) -> None:
        stream = self._run.stream
        if stream is None:  # a run without a stream (a test's own workflow)
            return
        event_id = self._run.input.event.id
        item = StreamItem(kind=kind, agent=agent, at=workflow.now(), event_id=event_id,
                          activity_id=activity_id, attempt=attempt, data=data)  # fmt: skip
        stream.publish(item)

    def _of_total(self) -> str:
        total = self.snapshot.total
        return f"{self.snapshot.step} of {total}" if total is not None else str(self.snapshot.step)

    def _show(self) -> None:
        """The Temporal UI shows this as the run's current details while it runs."""
        snap, running = self.snapshot, self._run.running
        doing = f"running {', '.join(running)}" if running else f"last: {snap.last_agent}"
        workflow.set_current_details(
            f"**{snap.flow}** ({snap.mode}): {doing} — step {self._of_total()}; "
            f"{snap.completed} done, {snap.failed} failed"
        )
