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
    import pydantic_core
    from temporalio.api.common.v1 import Payload
    from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState

    from agentflow.models.stream import EVENTS_TOPIC, TOKENS_TOPIC, StreamItem

# Items a continued run keeps: a watcher further behind restarts from the oldest one kept.
CARRIED_ITEMS = 100


JSON_PLAIN = b"json/plain"


def plain_payload(item: StreamItem) -> Payload:
    """What pydantic's payload converter makes of ``item``."""
    payload = Payload(data=pydantic_core.to_json(item))
    payload.metadata["encoding"] = JSON_PLAIN
    return payload


class RunStream:
    """Publishes a run's items; releases its watchers before the run ends or moves on."""

    def __init__(self, stream: WorkflowStream) -> None:
        self._stream = stream
        self._events = stream.topic(EVENTS_TOPIC, type=StreamItem)
        self._tokens = stream.topic(TOKENS_TOPIC, type=StreamItem)
        self._plain: bool | None = None  # the converter's payload of an item is plain_payload's

    def publish(self, item: StreamItem) -> None:
        self._events.publish(self._payload(item))

    def _payload(self, item: StreamItem) -> Payload:
        """``item`` as the workflow's payload converter encodes it. An event publishes a dozen
        items; through the converter each costs more in the sandbox than the rest of the
        event's workflow code (a converter per call, and the sandbox's ``isinstance`` on
        the payload's metadata). So the first item goes through the converter, and when that
        gave exactly ``plain_payload``'s bytes (pydantic's JSON converter, as agentflow
        connects), the rest are built directly: the same payloads either way."""
        if self._plain:
            return plain_payload(item)
        payload: Payload = workflow.payload_converter().to_payloads([item])[0]
        if self._plain is None:
            self._plain = payload == plain_payload(item)
        return payload

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
