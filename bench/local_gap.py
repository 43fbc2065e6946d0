"""``python -m bench.local_gap``: W2 with local agents, agentflow against raw-local, side by side.

Why agentflow-local's W2 lead over hand-written local activities moves between runs (1.34x in
one, 0.76x in another). Each variant is a worker on its own task queue of one dev server; the
variants are interleaved within each round, and every W2 records the CPU this process (client
and workers) and the dev server spent per flow. ``--burn N`` adds N busy processes for the
length of the run, to see what load from elsewhere does; ``--partitions`` sets the task queue
partitions of the dev server (agentflow's dynamic config has 1, the server's default is 4).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from agentflow.worker.sandbox import AgentflowSandboxRunner
from bench import workloads as w
from bench.report import Report, load
from bench.server import start_server
from bench.settings import settings_table
from bench.systems import AgentflowSystem, RawSystem

# (label, local system class, workflow runner: None keeps what the system uses by default)
VARIANTS: list[tuple[str, type[Any], type[Any] | None]] = [
    ("agentflow-local (agentflow runner)", AgentflowSystem, None),
    ("agentflow-local, stock sandbox runner", AgentflowSystem, SandboxedWorkflowRunner),
    ("agentflow-local, no sandbox", AgentflowSystem, UnsandboxedWorkflowRunner),
    ("raw-local (stock sandbox runner)", RawSystem, None),
    ("raw-local, agentflow runner", RawSystem, AgentflowSandboxRunner),
    ("raw-local, no sandbox", RawSystem, UnsandboxedWorkflowRunner),
]


async def compare(flows: int, rounds: int, partitions: int | None) -> Report:
    overrides: dict[str, object] = {}
    if partitions:
        overrides = {"matching.numTaskqueueReadPartitions": partitions,
                     "matching.numTaskqueueWritePartitions": partitions}  # fmt: skip
    report = Report()
    env = await start_server(overrides=overrides)
    try:
        systems = []
        for label, kind, runner in VARIANTS:
            options = {"workflow_runner": runner()} if runner else {}
            systems.append((label, kind(env.client, local=True, **options)))
        async with contextlib.AsyncExitStack() as stack:
            for _, system in systems:
                await stack.enter_async_context(system.serving())
                await w.w1_latency(system, "noop", 3)  # warm up
            for _ in range(rounds):
                for label, system in systems:
                    metrics = await _w2(system, flows)
                    report.add(label, "agentflow", metrics)
                    figures = ", ".join(f"{name} {value:.1f}" for name, value in metrics.items())
                    print(f"  {label}: {figures} ({load()})", file=sys.stderr)
    finally:
        await env.shutdown()
    return report


async def _w2(system: Any, flows: int) -> dict[str, float]:
    process, server = os.times(), _server_cpu()
    result = await w.w2_throughput(system, "noop", flows)
    spent = os.times()
    return {
        "W2 steps_per_s": result["steps_per_s"],
        "process CPU ms per flow": (spent.user + spent.system - process.user - process.system)
        / flows
        * 1000,
        "dev server CPU ms per flow": (_server_cpu() - server) / flows * 1000,
    }


def _server_cpu() -> float:
    """CPU seconds of this process's children (the dev server)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == str(os.getpid()):
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _spin(until: float) -> None:
    while time.monotonic() < until:
        pass


@contextlib.contextmanager
def burning(processes: int, seconds: float = 3600) -> Iterator[None]:
    """``processes`` busy loops (load from elsewhere), ended when the block ends."""
    until = time.monotonic() + seconds
    workers = [multiprocessing.Process(target=_spin, args=(until,), daemon=True)
               for _ in range(processes)]  # fmt: skip
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_gap", description=__doc__)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burn", type=int, default=0, help="busy processes to run meanwhile")
    parser.add_argument("--partitions", type=int, default=None)
    args = parser.parse_args(argv)
    print(f"before: {load()}; burn {args.burn}; partitions {args.partitions or 'agentflow'}")
    with burning(args.burn):
        report = asyncio.run(compare(args.flows, args.rounds, args.partitions))
    print(f"after: {load()}")
    print(settings_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
