"""When a session ends its workflow task between queued events (activities/session.py says
why): after CHECKPOINT_LOCAL_MS or CHECKPOINT_EVENTS of local work not yet recorded.

A bus shard (the ``agentflow-bus`` flow) counts its local work in events, with a wider time
bound (BUS_CHECKPOINT_LOCAL_MS): its fan-out is a few Temporal calls whose repeats dedupe, so
running up to CHECKPOINT_EVENTS of them again after a lost task costs only those calls, and
under load each fan-out takes about CHECKPOINT_LOCAL_MS on its own, which made every event pay
a checkpoint's round trips (bench/RESULTS.md, W7B)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.names import BUS_FLOW, SESSION_CHECKPOINT
    from agentflow.workflows._run import Run

CHECKPOINT_LOCAL_MS = 50.0
CHECKPOINT_EVENTS = 10
BUS_CHECKPOINT_LOCAL_MS = 500.0
# Shards that started before they counted their fan-outs by events replay without it.
BUS_CHECKPOINT_PATCH = "bus-shard-checkpoint-by-events"


class LocalWork:
    """Local agent work since the workflow task last ended (a regular activity, a wait)."""

    def __init__(self) -> None:
        self.ms, self.events = 0.0, 0
        self.limit_ms = CHECKPOINT_LOCAL_MS

    def recorded(self) -> None:
        self.ms, self.events = 0.0, 0

    def after(self, run: Run) -> None:
        """Account for an event's run: a regular agent in it ended a workflow task."""
        if run.round_trips:
            self.recorded()
        if run.unrecorded_local_ms:
            if run.config.name == BUS_FLOW and workflow.patched(BUS_CHECKPOINT_PATCH):
                self.limit_ms = BUS_CHECKPOINT_LOCAL_MS
            self.ms += run.unrecorded_local_ms
            self.events += 1

    async def checkpoint_if_due(self, activity_id: str) -> None:
        if self.ms < self.limit_ms and self.events < CHECKPOINT_EVENTS:
            return
        await workflow.execute_activity(
            SESSION_CHECKPOINT, start_to_close_timeout=timedelta(seconds=30), summary="checkpoint",
            activity_id=activity_id,
        )  # fmt: skip
        self.recorded()
