"""The faults the soak injects while the load runs, at set fractions of its duration: a worker
SIGKILLed three times (and restarted), the server SIGKILLed and restarted once on the same
SQLite file, and one worker cut off from the server through the proxy for a while."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from soak.procs import Server, Worker
from soak.proxy import Proxy


@dataclass
class Fault:
    what: str
    at: float  # time.time() when it began
    until: float  # when things were whole again (restarted, reconnected)
    pid: int | None = None  # the process killed


@dataclass
class FaultPlan:
    """Which faults, when (fractions of the duration): ``kills`` names workers by index."""

    kills: list[tuple[float, int]] = field(
        default_factory=lambda: [(0.15, 0), (0.45, 1), (0.75, 0)]
    )
    server_kill: float | None = 0.6
    cut: float | None = 0.3
    cut_seconds: float = 30.0


async def inject(
    plan: FaultPlan, seconds: float, server: Server, workers: list[Worker], proxy: Proxy
) -> list[Fault]:
    """Run the plan over ``seconds``; return what was done, in order."""
    steps: list[tuple[float, str, int]] = [(at, "kill", index) for at, index in plan.kills]
    if plan.server_kill is not None:
        steps.append((plan.server_kill, "server", 0))
    if plan.cut is not None:
        steps.append((plan.cut, "cut", 0))
    done: list[Fault] = []
    begin = time.monotonic()
    for at, kind, index in sorted(steps):
        await asyncio.sleep(max(0.0, begin + at * seconds - time.monotonic()))
        try:
            done.append(await _one(kind, index, plan, server, workers, proxy))
        except Exception as err:  # reported, and the soak goes on to its accounting
            done.append(Fault(f"{kind} {index} FAILED: {err}", time.time(), time.time()))
    return done


async def _one(
    kind: str, index: int, plan: FaultPlan, server: Server, workers: list[Worker], proxy: Proxy
) -> Fault:
    started = time.time()
    if kind == "kill":
        worker = workers[index]
        pid = worker.process.pid if worker.process else None
        worker.kill()
        await asyncio.sleep(2)
        await asyncio.to_thread(worker.start_patiently)
        return Fault(f"SIGKILL worker {worker.name}", started, time.time(), pid)
    if kind == "server":
        server.kill()
        await asyncio.sleep(2)
        await asyncio.to_thread(server.restart)
        return Fault("SIGKILL server, restart on the same SQLite file", started, time.time())
    proxy.cut()
    await asyncio.sleep(plan.cut_seconds)
    proxy.mend()
    cut = next((w.name for w in workers if w.address == proxy.address), "?")
    return Fault(f"cut worker {cut} off for {plan.cut_seconds:g}s", started,
                 time.time())  # fmt: skip


async def sample_rss(
    workers: list[Worker], stop: asyncio.Event, into: list[dict[str, int]]
) -> None:
    """Every 10 s: each worker's RSS (bytes), by name."""
    while not stop.is_set():
        into.append({worker.name: worker.rss() for worker in workers})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 10)
