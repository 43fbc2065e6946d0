"""The workflow's side of a run's live stream (agentflow/streaming.py says what it carries).

Each mode workflow and the session workflow construct one ``WorkflowStream`` in
``@workflow.init`` (the contrib requires that) and wrap it in a ``RunStream``. Publishing from
the workflow appends to an in-memory log and records no command, so streaming leaves the
commands of every workflow as they were and old histories replay unchanged.

Two duties come with the stream's poll Update: watchers' polls are handlers in flight, so
before the run ends or continues as new it releases them (``close`` / ``hand_over``), or the
run would end with unfinished handlers; and the log is carried across continue-as-new, cut to
its last ``CARRIED_ITEMS`` so a long loop or session does not grow its input without bound.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState

    from agentflow.models.stream import EVENTS_TOPIC, TOKENS_TOPIC, StreamItem

# Items a continued run keeps: a watcher further behind restarts from the oldest one kept.
CARRIED_ITEMS = 100


class RunStream:
    """Publishes a run's items; releases its watchers before the run ends or moves on."""

    def __init__(self, stream: WorkflowStream) -> None:
        self._stream = stream
        self._events = stream.topic(EVENTS_TOPIC, type=StreamItem)
        self._tokens = stream.topic(TOKENS_TOPIC, type=StreamItem)

    def publish(self, item: StreamItem) -> None:
        self._events.publish(item)

    def publish_tokens(self, item: StreamItem) -> None:
        """An LLM reply that came whole with its activity's result (activities/tokens.py)."""
        self._tokens.publish(item)

    def release(self) -> None:
        """Answer waiting polls now and refuse new ones (they retry on the next run)."""
        self._stream.detach_pollers()

    def state(self) -> WorkflowStreamState:
        """The stream to carry into the next run: its last CARRIED_ITEMS items."""
        state = self._stream.get_state()
        kept = state.log[-CARRIED_ITEMS:]
        state.base_offset += len(state.log) - len(kept)
        state.log = kept
        return state

    async def close(self) -> None:
        """Before the run ends: release watchers and let their polls finish (they then read
        what is left through the stream's query on the closed run)."""
        self.release()
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def hand_over(self) -> WorkflowStreamState:
        """Before continue-as-new: close, then the state to carry."""
        await self.close()
        return self.state()
