"""Live progress of a run: the ``progress`` query, the UI's current details, workflow logs.

Why here and not in each workflow: every mode runs its agents through ``FlowRun.invoke``, so
one object that hears "agent started" / "agent ended" serves all five modes. The query handler
is registered dynamically (``workflow.set_query_handler``), which keeps the workflow classes
unchanged. Queries and current details are not recorded as commands, so they cannot make a
replay diverge; ``workflow.logger`` skips its lines while a worker replays history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models import FlowProgress

if TYPE_CHECKING:
    from workflows._steps import FlowRun

PROGRESS_QUERY = "progress"


class Progress:
    """Counts agent steps of one run (and of the runs it continued from)."""

    def __init__(self, run: FlowRun) -> None:
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
        workflow.set_query_handler(PROGRESS_QUERY, self.query)

    def query(self) -> FlowProgress:
        return self.snapshot.model_copy(update={"running": list(self._run.running)})

    def started(self, agent: str) -> None:
        self.snapshot.step += 1
        workflow.logger.info(
            "agent %s started (step %s)", agent, self._of_total(), extra={"agent": agent}
        )
        self._show()

    def ended(self, agent: str, succeeded: bool) -> None:
        if succeeded:
            self.snapshot.completed += 1
        else:
            self.snapshot.failed += 1
        self.snapshot.last_agent = agent
        outcome = "completed" if succeeded else "failed"
        workflow.logger.info("agent %s %s", agent, outcome, extra={"agent": agent})
        self._show()

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
