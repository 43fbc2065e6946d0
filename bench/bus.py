"""W7: the durable bus against starting the same flows directly (issue 9's benchmark).

The subscribers are what a user would write: flows of one no-op agent whose ``[bus]
subscribes`` names the topic, served in this process by ``agentflow.worker.serving`` (which
also runs the bus worker and registers the flows on the bus). The same flows, on the same
workers, are also started directly with ``Runner.start``: the cost the bus is compared with.

A delivery counts when its agent runs: the agent notes the first time it ran for its publish
(``ARRIVALS``, ``time.perf_counter`` in this process, the clock the publishing or starting
call is timed with). Latency is from the beginning of the publish (or start) call to that
moment; throughput from the first call to the last agent running. Before a phase ends, every
delivery is checked to have completed in its session (every direct run to have returned), so
no work spills into the next phase and nothing was dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from temporalio.client import Client

from agentflow.client.bus import client_request, forget, publish
from agentflow.client.runner import FlowHandle, Runner
from agentflow.client.sessions import event_outcome, session_view
from agentflow.config import FlowConfig, parse_config
from agentflow.errors import AgentflowError
from agentflow.models.bus import (
    PublishRequest,
    Subscriber,
    delivery_event_id,
    delivery_session,
    subscribers_of,
)
from agentflow.models.flow import Event, State
from agentflow.names import session_workflow_id
from agentflow.worker.serve import serving
from bench.systems import REPO, AgentflowSystem
from bench.workloads import p95

Metrics = dict[str, float]
MARK = "w7"  # the data key that tells the agent which publish (or start) it runs for
# Client calls (publishes or starts) in flight at once in the throughput phase, for both.
IN_FLIGHT = 100
PHASE_TIMEOUT_SECONDS = 900.0
EVENT_TIMEOUT_SECONDS = 120.0

# (mark, agent) → when the agent first ran for that publish or start; later calls are repeats.
ARRIVALS: dict[tuple[str, str], float] = {}
REPEATS: list[tuple[str, str]] = []


async def delivered(event: Event, state: State) -> dict[str, Any]:
    """The subscribers' agent: a no-op that notes when it first ran for its publish."""
    mark = state.data.get(MARK)
    if isinstance(mark, str):
        key = (mark, event.target_agent)
        if key in ARRIVALS:
            REPEATS.append(key)
        else:
            ARRIVALS[key] = time.perf_counter()
    return {event.target_agent: True}


def subscriber_config(flow: str, agent: str, topic: str, local: bool) -> FlowConfig:
    """A flow of one no-op agent, started by every event on ``topic``."""
    raw = {
        "agent_flow": {"name": flow},
        "orchestration": {"mode": "sequential", "sequential_agents": [agent],
                          "timeout_seconds": 3600, "local_agents": local},
        "agents": {agent: {"handler": "bench.bus:delivered"}},
        "bus": {"subscribes": [topic]},
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


class DeliveryRef(NamedTuple):
    """Where one delivery went: a session of the subscriber flow, and its event id there."""

    flow: str
    session_id: str
    event_id: str

    @property
    def workflow_id(self) -> str:
        return session_workflow_id(self.flow, self.session_id)


@dataclass
class Served:
    """A subscriber flow being served: how to start it directly, and where the bus delivers."""

    config: FlowConfig
    runner: Runner
    subscriber: Subscriber

    @property
    def agent(self) -> str:
        return self.config.orchestration.sequential_agents[0]

    def delivery(self, request: PublishRequest) -> DeliveryRef:
        session = delivery_session(self.subscriber, request, self.config.bus.max_parallel)
        return DeliveryRef(self.config.name, session,
                           delivery_event_id(self.subscriber, request.event_id))  # fmt: skip


@contextlib.asynccontextmanager
async def subscribed(
    client: Client, configs: Sequence[FlowConfig], shared_queue: bool
) -> AsyncIterator[list[Served]]:
    """Serve ``configs`` (each on its own task queue, or all on one), registered on the bus;
    their registrations are removed afterwards, so that later publishes do not look for them."""
    prefix = f"bench-w7-{uuid.uuid4().hex[:6]}"
    groups = [list(configs)] if shared_queue else [[config] for config in configs]
    served: list[Served] = []
    async with contextlib.AsyncExitStack() as stack:
        for index, group in enumerate(groups):
            queue = f"{prefix}-{index}"
            pairs = [(config, REPO) for config in group]
            await stack.enter_async_context(serving(client, pairs, task_queue=queue))
            served += [_served(client, config, queue) for config in group]
        try:
            yield served
        finally:  # while the bus worker, which serves the registry, still runs
            for config in configs:
                await forget(client, config.name)


def _served(client: Client, config: FlowConfig, queue: str) -> Served:
    return Served(config, Runner(config, client, queue), subscribers_of(config, queue)[0])


@dataclass
class Burst:
    """One throughput phase: everything issued at once, ``IN_FLIGHT`` calls at a time."""

    seconds: float = 0.0  # first call → last agent running
    calls_seconds: float = 0.0  # first call → last call returned
    latencies_ms: list[float] = field(default_factory=list)  # per delivery (or run)

    def metrics(self, way: str) -> Metrics:
        return {f"{way}_seconds": self.seconds,
                f"{way}_p50_ms": statistics.median(self.latencies_ms),
                f"{way}_p95_ms": p95(self.latencies_ms)}  # fmt: skip


async def w7_bus(
    system: AgentflowSystem, events: int, latency_events: int, subscribers: int,
    bus_first: Iterator[bool],
) -> Metrics:  # fmt: skip
    """``events`` events published to a topic with ``subscribers`` subscriber flows of one
    no-op agent each (each flow on its own task queue), against ``events`` times
    ``subscribers`` direct starts of the same flows on the same workers.

    Latency (``idle_*``): ``latency_events`` times, one publish, then the same flows started
    directly (all at once), each waited for until done, so that every call finds the system
    idle; per delivery (or run), call → agent running. Throughput: every publish (or start)
    issued at once, ``IN_FLIGHT`` client calls at a time; ``*_seconds`` from the first call to
    the last agent running, ``*_p50/p95_ms`` per delivery under that load; the bus goes first
    when ``bus_first`` says so (alternate repeats). ``cost_ratio``: bus ÷ direct seconds.
    """
    ARRIVALS.clear()
    REPEATS.clear()
    topic = f"bench.w7.{uuid.uuid4().hex[:8]}"
    configs = [subscriber_config(f"w7-{topic[-8:]}-{index}", f"s{index}", topic, system.local)
               for index in range(subscribers)]  # fmt: skip
    client = system.client
    async with subscribed(client, configs, shared_queue=False) as subs:
        metrics = await _idle_latency(client, subs, topic, latency_events)
        if next(bus_first):
            bus = await _bus_burst(client, subs, topic, events)
            direct = await _direct_burst(subs, events)
        else:
            direct = await _direct_burst(subs, events)
            bus = await _bus_burst(client, subs, topic, events)
    deliveries = events * subscribers
    metrics |= bus.metrics("bus") | direct.metrics("direct")
    metrics |= {
        "bus_deliveries_per_s": deliveries / bus.seconds,
        "direct_runs_per_s": deliveries / direct.seconds,
        "cost_ratio": bus.seconds / direct.seconds,
        "publish_calls_seconds": bus.calls_seconds,
        "start_calls_seconds": direct.calls_seconds,
        "repeated_calls": float(len(REPEATS)),
    }
    return metrics


async def w7_fan_out(system: AgentflowSystem, subscribers: int, events: int) -> Metrics:
    """One event to ``subscribers`` subscriber flows (one worker, one task queue), ``events``
    times one after another: publish → first and → last agent running; against starting the
    same flows directly, all at once. ``serve_seconds``: starting the worker and registering
    the flows on the bus (not part of the rest)."""
    ARRIVALS.clear()
    REPEATS.clear()
    topic = f"bench.w7f.{uuid.uuid4().hex[:8]}"
    configs = [subscriber_config(f"w7f-{topic[-8:]}-{index}", f"s{index}", topic, system.local)
               for index in range(subscribers)]  # fmt: skip
    client = system.client
    first: list[float] = []
    last: list[float] = []
    direct: list[float] = []
    serve_started = time.perf_counter()
    async with subscribed(client, configs, shared_queue=True) as subs:
        serve_seconds = time.perf_counter() - serve_started
        for index in range(events):
            mark = f"{topic}-bus-{index}"
            started, request = await _publish(client, subs[0].config, topic, mark)
            times = await _arrived(_keys([mark], subs), EVENT_TIMEOUT_SECONDS)
            first.append((min(times) - started) * 1000)
            last.append((max(times) - started) * 1000)
            await _outcomes(client, [sub.delivery(request) for sub in subs])
            mark = f"{topic}-direct-{index}"
            runs = await asyncio.gather(*(_start(sub, mark) for sub in subs))
            times = await _arrived(_keys([mark], subs), EVENT_TIMEOUT_SECONDS)
            direct.append((max(times) - min(began for began, _ in runs)) * 1000)
            await asyncio.gather(*(handle.result() for _, handle in runs))
    return {"all_delivered_median_ms": statistics.median(last),
            "all_delivered_p95_ms": p95(last),
            "first_delivered_median_ms": statistics.median(first),
            "direct_all_running_median_ms": statistics.median(direct),
            "all_ratio": statistics.median(last) / statistics.median(direct),
            "serve_seconds": serve_seconds,
            "repeated_calls": float(len(REPEATS))}  # fmt: skip


async def _idle_latency(client: Client, subs: list[Served], topic: str, events: int) -> Metrics:
    bus: list[float] = []
    direct: list[float] = []
    for index in range(events):
        mark = f"{topic}-idle-bus-{index}"
        started, request = await _publish(client, subs[0].config, topic, mark)
        times = await _arrived(_keys([mark], subs), EVENT_TIMEOUT_SECONDS)
        bus += [(at - started) * 1000 for at in times]
        await _outcomes(client, [sub.delivery(request) for sub in subs])
        mark = f"{topic}-idle-direct-{index}"
        runs = await asyncio.gather(*(_start(sub, mark) for sub in subs))
        times = await _arrived(_keys([mark], subs), EVENT_TIMEOUT_SECONDS)
        direct += [(at - began) * 1000 for at, (began, _) in zip(times, runs, strict=True)]
        await asyncio.gather(*(handle.result() for _, handle in runs))
    return {"idle_bus_p50_ms": statistics.median(bus), "idle_bus_p95_ms": p95(bus),
            "idle_direct_p50_ms": statistics.median(direct), "idle_direct_p95_ms": p95(direct),
            "idle_p50_ratio": statistics.median(bus) / statistics.median(direct)}  # fmt: skip


async def _bus_burst(client: Client, subs: list[Served], topic: str, events: int) -> Burst:
    marks = [f"bus-{uuid.uuid4().hex[:8]}-{index}" for index in range(events)]
    publisher = subs[0].config
    # The same requests the timed calls build (pure, by event id): where each delivery goes.
    requests = [client_request(publisher, topic, {MARK: mark}, identity="bench", event_id=mark)
                for mark in marks]  # fmt: skip
    refs = [sub.delivery(request) for request in requests for sub in subs]
    sessions = sorted({(ref.flow, ref.session_id) for ref in refs})
    done_before = await _done(client, sessions)
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(mark: str) -> float:
        async with gate:
            started, _ = await _publish(client, publisher, topic, mark)
            return started

    first = time.perf_counter()
    starts = await asyncio.gather(*(one(mark) for mark in marks))
    burst = Burst(calls_seconds=time.perf_counter() - first)
    times = await _arrived(_keys(marks, subs), PHASE_TIMEOUT_SECONDS)
    burst.seconds = max(times) - first
    burst.latencies_ms = [(at - starts[index // len(subs)]) * 1000
                          for index, at in enumerate(times)]  # fmt: skip
    await _settled(client, sessions, done_before + len(refs))
    return burst


# W7F (bench/bus_filter.py) measures the same burst with filtered subscriptions.
bus_burst = _bus_burst


async def _direct_burst(subs: list[Served], events: int) -> Burst:
    marks = [f"direct-{uuid.uuid4().hex[:8]}-{index}" for index in range(events)]
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(sub: Served, mark: str) -> tuple[float, FlowHandle]:
        async with gate:
            return await _start(sub, mark)

    first = time.perf_counter()
    runs = await asyncio.gather(*(one(sub, mark) for mark in marks for sub in subs))
    burst = Burst(calls_seconds=time.perf_counter() - first)
    times = await _arrived(_keys(marks, subs), PHASE_TIMEOUT_SECONDS)
    burst.seconds = max(times) - first
    burst.latencies_ms = [(at - began) * 1000 for at, (began, _) in zip(times, runs, strict=True)]

    async def result(handle: FlowHandle) -> None:
        async with gate:
            await handle.result()

    await asyncio.gather(*(result(handle) for _, handle in runs))
    return burst


async def _publish(
    client: Client, publisher: FlowConfig, topic: str, mark: str
) -> tuple[float, PublishRequest]:
    """Publish as ``Runner.publish`` and the CLI do (check, then record in the bus shard)."""
    started = time.perf_counter()
    request = client_request(publisher, topic, {MARK: mark}, identity="bench", event_id=mark)
    await publish(client, request)
    return started, request


async def _start(sub: Served, mark: str) -> tuple[float, FlowHandle]:
    started = time.perf_counter()
    return started, await sub.runner.start({MARK: mark})


def _keys(marks: Sequence[str], subs: Sequence[Served]) -> list[tuple[str, str]]:
    """Arrival keys in (mark, subscriber) order, the order the calls were made in."""
    return [(mark, sub.agent) for mark in marks for sub in subs]


async def _arrived(keys: list[tuple[str, str]], timeout: float) -> list[float]:
    """When each of ``keys``'s agents first ran; waits until all have."""
    missing = set(keys)
    try:
        async with asyncio.timeout(timeout):
            while missing:
                missing = {key for key in missing if key not in ARRIVALS}
                if missing:
                    await asyncio.sleep(0.005)
    except TimeoutError:
        raise RuntimeError(f"{len(missing)} of {len(keys)} deliveries did not arrive "
                           f"within {timeout:g} s") from None  # fmt: skip
    return [ARRIVALS[key] for key in keys]


async def _outcomes(client: Client, refs: Sequence[DeliveryRef]) -> None:
    """Wait until every delivery in ``refs`` is processed; it must have completed."""
    outcomes = await asyncio.gather(
        *(event_outcome(client, ref.workflow_id, ref.event_id) for ref in refs)
    )
    failed = [f"{o.event_id}: {o.status}" for o in outcomes if o.status != "completed"]
    if failed:
        raise RuntimeError(f"deliveries not completed: {', '.join(failed[:5])}")


async def _done(client: Client, sessions: Sequence[tuple[str, str]]) -> int:
    """Events the sessions have finished (completed, handled or dead-lettered) so far; the
    dead-lettered ones are none here: a delivery of a no-op agent must complete."""
    total = 0
    for flow, session_id in sessions:
        try:
            view = await session_view(client, flow, session_id)
        except AgentflowError:  # not started yet
            continue
        if view.counts.dead_lettered:
            raise RuntimeError(f"{view.counts.dead_lettered} deliveries dead-lettered in "
                               f"session {session_id} of {flow}")  # fmt: skip
        total += view.counts.processed
    return total


async def _settled(client: Client, sessions: Sequence[tuple[str, str]], expected: int) -> None:
    """Wait until the sessions have finished ``expected`` events in all (untimed)."""
    async with asyncio.timeout(PHASE_TIMEOUT_SECONDS):
        while await _done(client, sessions) < expected:
            await asyncio.sleep(0.2)
