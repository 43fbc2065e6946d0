"""W6 floor: an event of 5 local agents into a live session, against the bare Update round trip
into a live workflow that runs nothing, in one run on the same server and client.

The three calls alternate, so that load from elsewhere falls on all of them alike:
- ``session``: ``Runner.emit(..., wait=True)`` into a live, idle session of W1's 5-agent
  sequential no-op flow with local agents (what W6's ``wait_*`` measures on agentflow-local);
- ``bare``: ``execute_update`` of a ``BareUpdate`` workflow (bench/bare.py) that answers in the
  workflow task the Update arrives in: the round trip every such event pays at least;
- ``bare_with_start``: the same Update sent as update-with-start (``USE_EXISTING``), the RPC
  that ``emit(wait=True)`` uses, so that the RPC's own cost is told apart from the session's.

``floor_ratio`` = session median ÷ bare median (target ≤ 1.3). ``*_cpu_ms``: this process's CPU
time per call (client, workers and the SDK's core threads all run in it), the part of the gap
that is agentflow's and the SDK's Python work rather than the server's; ``cpu_ratio`` = session
CPU ÷ bare CPU.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from bench.bare import BareUpdate
from bench.systems import AgentflowSystem
from bench.workloads import AGENTS, Metrics, p95


async def w6_floor(system: AgentflowSystem, events: int) -> Metrics:
    """``events`` of each of the three calls, alternating (see the module's docstring)."""
    client = system.client
    queue = f"bare-{uuid.uuid4().hex[:8]}"
    session = f"floor-{uuid.uuid4().hex[:8]}"
    times: dict[str, list[float]] = {"session": [], "bare": [], "bare_with_start": []}
    cpu: dict[str, float] = dict.fromkeys(times, 0.0)
    async with Worker(client, task_queue=queue, workflows=[BareUpdate]):
        handle = await client.start_workflow(BareUpdate.run, id=f"bare-{queue}", task_queue=queue)

        async def bare() -> Any:
            return await handle.execute_update(BareUpdate.ping, "x")

        async def bare_with_start() -> Any:
            start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
                BareUpdate.run, id=handle.id, task_queue=queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )  # fmt: skip
            return await client.execute_update_with_start_workflow(
                BareUpdate.ping, "x", start_workflow_operation=start
            )

        async def event() -> Any:
            return await (await system.emit(AGENTS, session, wait=True)).result()

        calls = {"session": event, "bare": bare, "bare_with_start": bare_with_start}
        for call in calls.values():  # warm: the session started, sandbox and caches loaded
            await call()
        try:
            for index in range(events):
                order = list(calls) if index % 2 == 0 else list(reversed(calls))
                for name in order:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    await calls[name]()
                    times[name].append((time.perf_counter() - started) * 1000)
                    cpu[name] += time.process_time() - cpu_started
        finally:
            await handle.cancel()
    metrics: Metrics = {}
    for name, values in times.items():
        metrics[f"{name}_median_ms"] = statistics.median(values)
        metrics[f"{name}_p95_ms"] = p95(values)
        metrics[f"{name}_cpu_ms"] = cpu[name] * 1000 / len(values)
    metrics["floor_ratio"] = metrics["session_median_ms"] / metrics["bare_median_ms"]
    metrics["with_start_ratio"] = (
        metrics["session_median_ms"] / metrics["bare_with_start_median_ms"]
    )
    # The same ratio in this process's CPU: less at the mercy of other load on the machine.
    metrics["cpu_ratio"] = metrics["session_cpu_ms"] / metrics["bare_cpu_ms"]
    return metrics
