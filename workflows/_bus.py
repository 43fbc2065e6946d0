"""Publish/subscribe within a run: the durable bus's fast path for the publisher's own flow.

An agent publishes by setting ``state.meta["publish"] = "topic"`` (several: ``"a,b"``) on its
output. The flow passes that state on without ``publish`` and delivers it to every enabled
agent of this flow whose ``subscribes`` matches the topic. It also records the publish on the
durable bus (``bus_publish``, a local activity), which delivers it to the subscribers of every
other flow (agentflow/bus.py); an agent that may not publish the topic (its ``publishes``)
gets the event dead-lettered there, and nothing delivered.

Each in-run delivery is an ordinary ``run_agent`` activity (retries, summary, activity id
naming the agent), started as a background task of the workflow so subscribers react
independently: in parallel with each other and with the rest of the flow, at most
``max_concurrency`` at once. Their outputs are never merged into the flow's state; their
results join the flow's results right after their publisher's, and a failing subscriber is
recorded without failing the flow. A subscriber may publish in turn; a chain
longer than ``max_hops`` fails the run ("publish loop detected").

Why background tasks and not child workflows: a delivery is one agent call, and its history
events sit next to the publisher's, so the trace and replay see one run. The run waits for
every delivery before it completes, fails or continues as new (``settle`` / ``drain``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from agentflow.models.bus import (
        PUBLISH,
        PUBLISH_KEY,
        PublishRequest,
        chain_of,
        published_topics,
    )
    from agentflow.models.flow import AgentResult, FlowResult, State
    from agentflow.workflows._failures import StepFailed
    from agentflow.workflows._publish import denied, publish_request, record, subscriber_metadata
    from agentflow.workflows._run import Delivery, Run


# Runs started before the durable bus existed replay without its activity.
DURABLE_BUS_PATCH = "durable-bus"
T = TypeVar("T")


class _Sent:
    def __init__(self, agent: str, delivery: Delivery) -> None:
        self.agent, self.delivery = agent, delivery
        self.result: AgentResult | None = None


class Bus:
    """The deliveries of one run: started as agents publish, awaited before the run ends."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._gate = asyncio.Semaphore(run.config.orchestration.max_concurrency)
        self._pending: list[asyncio.Task[None]] = []
        # id(publisher's result) -> (that result, its deliveries in order); the result is
        # kept so its id stays unique until the deliveries are placed after it.
        self._sent: dict[int, tuple[AgentResult, list[_Sent]]] = {}
        self.error = ""  # a publish chain over max_hops: fails the run once deliveries end

    def published(
        self, result: AgentResult, activity_id: str, state: State, delivery: Delivery | None
    ) -> State:
        """The state to pass on (without ``publish``); start one delivery per subscriber."""
        if PUBLISH not in state.meta:
            return state
        topics = published_topics(state.meta.pop(PUBLISH))
        key = state.meta.pop(PUBLISH_KEY, None)
        event = self._run.input.event
        chain = (*delivery.chain, result.agent) if delivery else (*chain_of(event.metadata),
                                                                  result.agent)  # fmt: skip
        config, sent = self._run.config, []
        durable = workflow.patched(DURABLE_BUS_PATCH)
        for topic in topics:
            why_denied = denied(config, result.agent, topic)
            if why_denied:
                workflow.logger.warning("%s: dead-lettered by the bus, not delivered", why_denied)
                if durable:
                    self._publish(topic, state, key, chain, activity_id, why_denied)
                continue
            subscribers = config.subscribers(topic)
            here = ", ".join(subscribers) or "no subscribers in this flow"
            workflow.logger.info("agent %s published %s to %s", result.agent, topic, here)
            self._run.progress.note("published", result.agent, topic=topic, subscribers=subscribers)
            if (subscribers or durable) and len(chain) > config.orchestration.max_hops:
                self.error = self.error or _loop_message(chain, config.orchestration.max_hops)
                continue
            for agent in subscribers:
                sent.append(_Sent(agent, Delivery(topic, activity_id, chain)))
                self._pending.append(asyncio.create_task(self._deliver(sent[-1], state.clone())))
                if self._run.progress.snapshot.total is not None:
                    self._run.progress.snapshot.total += 1
            if durable:
                self._publish(topic, state, key, chain, activity_id, None)
        if sent:
            self._sent[id(result)] = (result, sent)
        return state

    def delivery_metadata(self, delivery: Delivery) -> dict[str, str]:
        return subscriber_metadata(self._run.config, *delivery)

    def _publish(
        self, topic: str, state: State, key: str | None, chain: tuple[str, ...],
        activity_id: str, why_denied: str | None,
    ) -> None:  # fmt: skip
        """Record the publish on the durable bus, beside the flow (awaited before it ends)."""
        request = publish_request(self._run, topic, state, key, chain, activity_id, why_denied)
        self._pending.append(asyncio.create_task(self._record(request, f"{activity_id}-{topic}")))

    async def _record(self, request: PublishRequest, activity_id: str) -> None:
        self.error = self.error or await record(request, activity_id)

    async def _deliver(self, sent: _Sent, state: State) -> None:

        async with self._gate:
            try:
                _, sent.result = await self._run.invoke(
                    sent.agent, state, sent.delivery.chain[-1], sent.delivery
                )
            except StepFailed as failed:  # recorded; an independent subscriber fails alone
                sent.result = failed.result
                sent.result.topic = sent.delivery.topic

    async def settle(self, body: Awaitable[T]) -> T:
        """Run the flow's own steps, then wait for every delivery before the run ends."""
        try:
            value = await body
        except ApplicationError as err:
            await self._wait()
            partial = err.details[0] if err.details else None
            if isinstance(partial, FlowResult):  # a failed run still lists its deliveries
                partial.results = list(self._run.results)
            raise
        await self.drain()
        return value

    async def drain(self, **extra: Any) -> None:
        """Wait for pending deliveries (and what they publish); fail on a publish loop."""
        await self._wait()
        if self.error:
            self._run.fail(self.error, **extra)

    async def _wait(self) -> None:
        while self._pending:
            pending, self._pending = self._pending, []
            await asyncio.gather(*pending)
        if self._sent:
            self._run.results = self._ordered(self._run.results)
            self._sent.clear()

    def _ordered(self, results: list[AgentResult]) -> list[AgentResult]:
        """Each subscriber's result right after its publisher's, in topic then config
        order: the same order whichever delivery finished first."""
        out: list[AgentResult] = []
        for result in results:
            out.append(result)
            _, sent = self._sent.get(id(result), (result, []))
            out += self._ordered([s.result for s in sent if s.result is not None])
        return out


def _loop_message(chain: tuple[str, ...], max_hops: int) -> str:
    shown = " → ".join(chain)
    if len(set(chain)) < len(chain):
        return f"publish loop detected: {shown} → … (max_hops = {max_hops})"
    return f"publish chain too long: {shown} → … (max_hops = {max_hops})"
