"""When a session ends its workflow task between queued events (activities/session.py says
why): after CHECKPOINT_LOCAL_MS or CHECKPOINT_EVENTS of local work not yet recorded."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.names import SESSION_CHECKPOINT
    from agentflow.workflows._run import Run

CHECKPOINT_LOCAL_MS = 50.0
CHECKPOINT_EVENTS = 10


class LocalWork:
    """Local agent work since the workflow task last ended (a regular activity, a wait)."""

    def __init__(self) -> None:
        self.ms, self.events = 0.0, 0

    def recorded(self) -> None:
        self.ms, self.events = 0.0, 0

    def after(self, run: Run) -> None:
        """Account for an event's run: a regular agent in it ended a workflow task."""
        if run.round_trips:
            self.recorded()
        if run.unrecorded_local_ms:
            self.ms += run.unrecorded_local_ms
            self.events += 1

    async def checkpoint_if_due(self, activity_id: str) -> None:
        if self.ms < CHECKPOINT_LOCAL_MS and self.events < CHECKPOINT_EVENTS:
            return
        await workflow.execute_activity(
            SESSION_CHECKPOINT, start_to_close_timeout=timedelta(seconds=30), summary="checkpoint",
            activity_id=activity_id,
        )  # fmt: skip
        self.recorded()
