"""W1-W6: each runs one workload once on one system and returns its metrics."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

from temporalio.client import Client

from agentflow.models.flow import FlowFailedError
from bench import calls
from bench.systems import AgentflowSystem, SessionSystem, System, history_sizes

AGENTS = 5
Metrics = dict[str, float]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def w1_latency(system: System, variant: str, runs: int) -> Metrics:
    """Sequential flow of 5 agents, ``runs`` runs one after another.

    ``step_*`` is the latency of one agent step, measured directly: the time from one agent's
    call to the next one's within a run (4 per run), which covers the agent's work, its result
    reaching the workflow and the next agent being scheduled and started. ``run_per_agent_ms``
    divides a whole run by 5, so it also carries what every run pays once (start, first and
    last workflow task, fetching the result).
    """
    latencies: list[float] = []
    steps: list[float] = []
    for _ in range(runs):
        calls.CALL_STARTS.clear()
        started = time.perf_counter()
        await system.sequential(AGENTS, variant, {})
        latencies.append((time.perf_counter() - started) * 1000)
        if len(calls.CALL_STARTS) != AGENTS:  # a retried or lost call would skew the steps
            raise RuntimeError(f"{len(calls.CALL_STARTS)} agent calls in a run of {AGENTS}")
        steps += calls.gaps()
    mean = statistics.fmean(latencies)
    return {"run_mean_ms": mean, "run_median_ms": statistics.median(latencies),
            "run_p95_ms": p95(latencies),
            "run_per_agent_ms": mean / AGENTS,
            "step_mean_ms": statistics.fmean(steps), "step_p95_ms": p95(steps)}  # fmt: skip


async def w2_throughput(system: System, variant: str, flows: int) -> Metrics:
    """``flows`` sequential flows of 5 agents started at once."""
    started = time.perf_counter()
    handles = await asyncio.gather(
        *(system.start_sequential(AGENTS, variant, {}) for _ in range(flows))  # type: ignore[attr-defined]
    )
    await asyncio.gather(*(_result(handle) for handle in handles))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "flows_per_s": flows / seconds,
            "steps_per_s": flows * AGENTS / seconds}  # fmt: skip


async def _result(handle: Any) -> Any:
    return await (handle if isinstance(handle, asyncio.Future) else handle.result())


async def w3_fan_out(system: System, client: Client, agents: int) -> Metrics:
    """Collaborative flow of ``agents`` no-op agents, max_concurrency 100."""
    started = time.perf_counter()
    handle = await system.fan_out(agents, "noop")
    seconds = time.perf_counter() - started
    sizes = await history_sizes(client, handle) if handle is not None else [0]
    return {"seconds": seconds, "max_history_events": max(sizes)}


async def w4_loop(system: System, client: Client, iterations: int) -> Metrics:
    """Loop of ``iterations`` no-op iterations (continue-as-new every 500)."""
    started = time.perf_counter()
    handle = await system.loop(iterations, "noop")
    seconds = time.perf_counter() - started
    sizes = await history_sizes(client, handle) if handle is not None else [0]
    return {"seconds": seconds, "max_history_events": max(sizes), "runs": len(sizes)}


async def w5_state(system: System, megabytes: float) -> Metrics:
    """``megabytes`` of state, made by the first agent, carried through 5 sequential agents.

    Made by an agent rather than passed in: a run's input holds its data twice (event.data and
    state.data), so 1 MB of input already exceeds Temporal's 2 MB payload limit.
    """
    started = time.perf_counter()
    await system.sequential(AGENTS, "noop", {"inflate_bytes": int(megabytes * 1024 * 1024)})
    return {"seconds": time.perf_counter() - started}


async def w5_too_large(system: AgentflowSystem, megabytes: float) -> str:
    """An agent that returns ``megabytes`` of state: how the run ends, and how fast."""
    runner = system.runner("sequential", AGENTS, "inflate")
    started = time.perf_counter()
    try:
        await asyncio.wait_for(runner.run({"inflate_bytes": int(megabytes * 1024 * 1024)}), 120)
    except FlowFailedError as err:
        return f"failed after {time.perf_counter() - started:.2f} s: {err}"
    except TimeoutError:
        return "still running after 120 s (retrying?)"
    return f"completed after {time.perf_counter() - started:.2f} s"


async def w5_too_large_input(system: AgentflowSystem, megabytes: float) -> str:
    """Starting a run whose input state is ``megabytes``: what the client sees."""
    runner = system.runner("sequential", AGENTS, "noop")
    started = time.perf_counter()
    try:
        await runner.start({"blob": "x" * int(megabytes * 1024 * 1024)})
    except Exception as err:  # whatever the SDK or server raises is the finding
        seconds = time.perf_counter() - started
        return f"start failed after {seconds:.2f} s: {type(err).__name__}: {err}"
    return "started (unexpected)"


async def w6_session_latency(system: SessionSystem, sessions: int, events: int) -> Metrics:
    """``events`` events, one at a time, into each of ``sessions`` live, idle sessions of the
    5-agent sequential no-op flow (W1's): emit → result, per event.

    Every session is started first (one event each, not measured), then the sessions take turns,
    one event each, so every measured event finds its session idle. Events alternate between the
    two ways to wait: ``wait_*`` is ``emit(..., wait=True)`` (update-with-start: one round trip
    that returns the outcome), ``signal_*`` is a plain emit (signal-with-start) and then
    ``handle.result()`` (an ``event_result`` update). ``step_*`` is measured from the agents'
    calls, as in W1.
    """
    ids = _session_ids(sessions)
    for session in ids:
        await (await system.emit(AGENTS, session, wait=True)).result()
    latencies: dict[bool, list[float]] = {True: [], False: []}
    steps: list[float] = []
    for index in range(events):
        wait = index % 2 == 0
        for session in ids:
            calls.CALL_STARTS.clear()
            started = time.perf_counter()
            await (await system.emit(AGENTS, session, wait=wait)).result()
            latencies[wait].append((time.perf_counter() - started) * 1000)
            if len(calls.CALL_STARTS) != AGENTS:
                raise RuntimeError(f"{len(calls.CALL_STARTS)} agent calls in an event of {AGENTS}")
            steps += calls.gaps()
    metrics: Metrics = {}
    for wait, label in ((True, "wait"), (False, "signal")):
        if latencies[wait]:
            metrics[f"{label}_median_ms"] = statistics.median(latencies[wait])
            metrics[f"{label}_p95_ms"] = p95(latencies[wait])
    metrics["step_mean_ms"] = statistics.fmean(steps)
    return metrics


async def w6_session_throughput(system: SessionSystem, sessions: int, events: int) -> Metrics:
    """``sessions`` times ``events`` events emitted at once (signal-with-start: the sessions start
    with their first event), until each session's last event has its outcome; agent steps/s
    over that time. A session processes its events in arrival order, so its last outcome comes
    after all of its others: waiting for each outcome instead would add an Update, and a
    workflow task, per event to the session's own work (a fresh run's result, in W2, is a long
    poll that costs its worker nothing). Every outcome is still read, after the clock stops."""
    ids = _session_ids(sessions)
    calls.CALL_STARTS.clear()
    started = time.perf_counter()
    handles = await asyncio.gather(
        *(system.emit(AGENTS, session, wait=False) for _ in range(events) for session in ids)
    )
    by_session: dict[str, list[Any]] = {session: [] for session in ids}
    for index, handle in enumerate(handles):
        by_session[ids[index % sessions]].append(handle)
    await asyncio.gather(*(queue[-1].result() for queue in by_session.values()))
    seconds = time.perf_counter() - started
    # One reader per session, event by event: Temporal admits 10 updates in flight per
    # workflow (history.maxInFlightUpdates).
    await asyncio.gather(*(_outcomes(queue) for queue in by_session.values()))
    total = sessions * events
    if len(calls.CALL_STARTS) != total * AGENTS:  # a retried or lost call would skew steps/s
        raise RuntimeError(f"{len(calls.CALL_STARTS)} agent calls for {total} events")
    return {"seconds": seconds, "events_per_s": total / seconds,
            "steps_per_s": total * AGENTS / seconds}  # fmt: skip


async def _outcomes(handles: list[Any]) -> None:
    for handle in handles:
        await handle.result()


def _session_ids(sessions: int) -> list[str]:
    prefix = uuid.uuid4().hex[:8]
    return [f"w6-{prefix}-{index}" for index in range(sessions)]
