"""``python -m bench.scale_out`` (W12): W2 and W6 throughput with 1, 2 and 3 worker processes on
one task queue of one dev server, and where the time went (CPU shares).

The workers are real processes (``python worker.py --config FILE --task-queue QUEUE``, as
tests/_worker_process.py starts them), serving the 5-agent sequential no-op flow of W1/W2
(regular agents by default, ``--local`` for local ones). This process is the client only. Each
round measures 1, then 2, then 3 workers (the extra ones started between measurements, then
stopped again), so load from elsewhere falls on every count alike. Beside each figure: the CPU
share (CPU seconds ÷ wall seconds; 1.00 = one core busy) of the dev server, of all workers
together and of this client process, and the load average. The machine's cores bound the sum.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from agentflow.client.runner import Runner
from agentflow.config import load_config
from agentflow.worker.devserver_process import dev_server_args, temporal_binary
from bench.report import load, machine
from tests._worker_process import WorkerProcess

REPO = Path(__file__).resolve().parent.parent
AGENTS = 5
WORKER_COUNTS = (1, 2, 3)

FLOW = """\
[agent_flow]
name = "bench-scale-out"

[orchestration]
mode = "sequential"
sequential_agents = ["a0", "a1", "a2", "a3", "a4"]
timeout_seconds = 3600
local_agents = {local}

[agents.a0]
handler = "bench.agents:noop"
[agents.a1]
handler = "bench.agents:noop"
[agents.a2]
handler = "bench.agents:noop"
[agents.a3]
handler = "bench.agents:noop"
[agents.a4]
handler = "bench.agents:noop"
"""

Metrics = dict[str, float]


class ShardMeter:
    """The dev server's history shard: its count, and the mean wait for its persistence
    semaphore (``semaphore_latency``, Temporal's measure of a shard's processing capacity)."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"

    def sample(self) -> dict[str, float]:
        with urllib.request.urlopen(self.url, timeout=30) as response:
            text = response.read().decode()
        found = {"shards": 0.0, "wait_sum": 0.0, "wait_count": 0.0}
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name.startswith("numshards_gauge"):
                found["shards"] = float(value)
            elif name.startswith("semaphore_latency_sum{") and 'service_name="history"' in name:
                found["wait_sum"] += float(value)
            elif name.startswith("semaphore_latency_count{") and 'service_name="history"' in name:
                found["wait_count"] += float(value)
        return found


class CpuMeter:
    """CPU seconds of the dev server, the worker processes and this process over a window."""

    def __init__(self, workers: Sequence[WorkerProcess]) -> None:
        me = psutil.Process()
        self.server = [p for p in me.children(recursive=True) if p.name() == "temporal"]
        if not self.server:
            raise RuntimeError("no temporal process among this process's children")
        pids = [w.process.pid for w in workers if w.process is not None]
        self.groups = {"server": self.server, "workers": [psutil.Process(p) for p in pids],
                       "client": [me]}  # fmt: skip

    def sample(self) -> dict[str, float]:
        return {name: sum(_cpu(p) for p in procs) for name, procs in self.groups.items()}


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def measured(
    workers: Sequence[WorkerProcess], shards: ShardMeter, run: Callable[[], Awaitable[Metrics]]
) -> Metrics:
    """``run``'s metrics, plus each part's CPU share over its wall time, the history shard's
    mean semaphore wait, and the 1-min load."""
    meter = CpuMeter(workers)
    shard_before = await asyncio.to_thread(shards.sample)
    before, started = meter.sample(), time.perf_counter()
    metrics = await run()
    wall, after = time.perf_counter() - started, meter.sample()
    shard_after = await asyncio.to_thread(shards.sample)
    waits = shard_after["wait_count"] - shard_before["wait_count"]
    metrics["history_shards"] = shard_after["shards"]
    metrics["shard_wait_ms"] = (
        (shard_after["wait_sum"] - shard_before["wait_sum"]) * 1000 / waits if waits else 0.0
    )
    steps = metrics["steps_per_s"] * metrics["seconds"]
    for name in before:
        metrics[f"{name}_cpu_share"] = (after[name] - before[name]) / wall
        metrics[f"{name}_cpu_ms_per_step"] = (after[name] - before[name]) * 1000 / steps
    metrics["load_1min"] = os.getloadavg()[0]
    return metrics


async def w2(runner: Runner, flows: int) -> Metrics:
    """``flows`` runs started at once, each waited for."""
    started = time.perf_counter()
    handles = await asyncio.gather(*(runner.start({}) for _ in range(flows)))
    await asyncio.gather(*(handle.result() for handle in handles))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "steps_per_s": flows * AGENTS / seconds}


async def w6(runner: Runner, sessions: int, events: int) -> Metrics:
    """``sessions`` x ``events`` events emitted at once (W6 throughput): until each session's
    last event has its outcome. Every outcome is then read (untimed) and must be completed."""
    prefix = uuid.uuid4().hex[:8]
    ids = [f"w12-{prefix}-{index}" for index in range(sessions)]
    started = time.perf_counter()
    handles = await asyncio.gather(
        *(runner.emit({}, session_id=session) for _ in range(events) for session in ids)
    )
    by_session: dict[str, list[Any]] = {session: [] for session in ids}
    for index, handle in enumerate(handles):
        by_session[ids[index % sessions]].append(handle)
    await asyncio.gather(*(queue[-1].result() for queue in by_session.values()))
    seconds = time.perf_counter() - started
    await asyncio.gather(*(_all_completed(queue) for queue in by_session.values()))
    return {"seconds": seconds, "steps_per_s": sessions * events * AGENTS / seconds}


async def _all_completed(handles: list[Any]) -> None:
    for handle in handles:
        await handle.result()  # raises unless the event completed


@contextlib.asynccontextmanager
async def worker_pool(
    address: str, config: Path, queue: str, log: Path
) -> AsyncIterator[list[WorkerProcess]]:
    """Three worker processes, not started; those started are stopped at the end."""
    pool = [WorkerProcess(config, queue, address, log, cwd=REPO) for _ in WORKER_COUNTS]
    try:
        yield pool
    finally:
        for worker in pool:
            worker.stop()


def running(pool: list[WorkerProcess], count: int) -> list[WorkerProcess]:
    """Exactly the first ``count`` workers of ``pool`` running (SIGTERM for the others)."""
    for index, worker in enumerate(pool):
        alive = worker.process is not None and worker.process.poll() is None
        if index < count and not alive:
            worker.start()
        elif index >= count and alive:
            worker.stop()
    return pool[:count]


async def scale_out(
    flows: int, sessions: int, events: int, rounds: int, local: bool
) -> dict[str, dict[int, list[Metrics]]]:
    results: dict[str, dict[int, list[Metrics]]] = {"W2": {}, "W6": {}}
    metrics_port = _free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=[*dev_server_args(), "--metrics-port", str(metrics_port)],
        data_converter=pydantic_data_converter,
    )  # agentflow's dev server (bench/server.py), with its metrics on a known port
    shards = ShardMeter(metrics_port)
    try:
        with tempfile.TemporaryDirectory(prefix="w12-") as folder:
            config_path = Path(folder) / "agentflow.toml"
            config_path.write_text(FLOW.format(local="true" if local else "false"))
            config = load_config(config_path)
            queue = f"bench-w12-{uuid.uuid4().hex[:8]}"
            address = env.client.service_client.config.target_host
            client: Client = env.client
            runner = Runner(config, client, queue)
            async with worker_pool(address, config_path, queue, Path(folder) / "w.log") as pool:
                for _ in range(rounds):
                    for count in WORKER_COUNTS:
                        workers = running(pool, count)
                        await w2(runner, 10)  # warm up the new worker's sandbox and caches
                        runs = (("W2", lambda: w2(runner, flows)),
                                ("W6", lambda: w6(runner, sessions, events)))  # fmt: skip
                        for name, run in runs:
                            metrics = await measured(workers, shards, run)
                            results[name].setdefault(count, []).append(metrics)
                            shown = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())
                            print(f"  {name}, {count} worker(s): {shown}", file=sys.stderr)
    finally:
        await env.shutdown()
    return results


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def table(results: dict[str, dict[int, list[Metrics]]]) -> str:
    """One row per workload and worker count: medians [min to max] over the rounds."""
    keys = ("steps_per_s", "server_cpu_share", "workers_cpu_share", "client_cpu_share",
            "server_cpu_ms_per_step", "workers_cpu_ms_per_step", "shard_wait_ms",
            "load_1min")  # fmt: skip
    header = ["workload", "workers", *keys, "steps/s ÷ 1 worker"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, by_count in results.items():
        base = statistics.median(m["steps_per_s"] for m in by_count.get(1, [{"steps_per_s": 1}]))
        for count, samples in by_count.items():
            cells = [name, str(count)]
            for key in keys:
                values = [m[key] for m in samples]
                cells.append(f"{statistics.median(values):.2f} [{min(values):.2f} to "
                             f"{max(values):.2f}]")  # fmt: skip
            speed = statistics.median(m["steps_per_s"] for m in samples) / base
            lines.append("| " + " | ".join([*cells, f"{speed:.2f}"]) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__)
    parser.add_argument("--flows", type=int, default=200, help="W2 runs at once")
    parser.add_argument("--sessions", type=int, default=20, help="W6 sessions")
    parser.add_argument("--events", type=int, default=10, help="W6 events per session")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local", action="store_true", help="local agents (local_agents)")
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    args = parser.parse_args(argv)
    if args.quick:
        args.flows, args.sessions, args.events, args.rounds = 5, 2, 2, 1
    header = machine()
    header.append(f"before: {load()}")
    results = asyncio.run(scale_out(args.flows, args.sessions, args.events, args.rounds,
                                    args.local))  # fmt: skip
    header.append(f"after: {load()}")
    header.append(
        f"sizes: W2 {args.flows} flows, W6 {args.sessions} sessions x {args.events} "
        f"events, {args.rounds} rounds, {'local' if args.local else 'regular'} agents"
    )
    print("\n".join(f"- {line}" for line in header))
    print()
    print(table(results))
    shards = {m["history_shards"] for by_count in results.values() for ms in by_count.values()
              for m in ms}  # fmt: skip
    print(f"\ndev server history shards (numshards_gauge): {', '.join(f'{n:g}' for n in shards)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
