"""``python -m bench.security``: what ``[security]`` encryption and ``[payloads]`` storage cost.

W1 (5 no-op agents, one run after another) and W5 (a state made by the first agent, carried by
all 5) on plain agentflow, agentflow with AES-256-GCM payloads, and agentflow with an external
filesystem store (with and without encryption); W5 also at 10 and 50 MB, which only the store
can carry, and a run whose input is 10 MB. Systems interleave within each repeat, as in
``python -m bench``. Prints a table; bench/RESULTS.md records it by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client

from agentflow.client.codec import new_key_entry
from agentflow.client.connection import connect, data_converter
from agentflow.config import PayloadsConfig, SecurityConfig, TemporalConfig
from bench import workloads as w
from bench.report import load
from bench.server import start_server
from bench.systems import AgentflowSystem

MB = 1024 * 1024


async def _system(
    address: str, name: str, encrypt: bool, store: Path | None
) -> tuple[Client, AgentflowSystem]:
    payloads = None if store is None else PayloadsConfig(path=str(store))
    converter = await data_converter(SecurityConfig(encrypt=encrypt), payloads)
    client = await connect(TemporalConfig(address=address), converter=converter)
    system = AgentflowSystem(client)
    system.name = name
    return client, system


async def _input_run(system: AgentflowSystem, megabytes: float) -> dict[str, float]:
    """A run whose input (its first agent's state) is ``megabytes``."""
    runner = system.runner("sequential", w.AGENTS, "noop")
    started = time.perf_counter()
    await runner.run({"blob": "x" * int(megabytes * MB)})
    return {"seconds": time.perf_counter() - started}


async def run(repeats: int, w1_runs: int, sizes: Sequence[float]) -> dict[str, list[float]]:
    os.environ.setdefault("AGENTFLOW_ENCRYPTION_KEYS", new_key_entry("bench"))
    env = await start_server()
    results: dict[str, list[float]] = {}
    try:
        address = env.client.service_client.config.target_host
        with tempfile.TemporaryDirectory(prefix="bench-payloads-") as tmp:
            store = Path(tmp)
            made = [
                await _system(address, "agentflow", False, None),
                await _system(address, "encrypted", True, None),
                await _system(address, "stored", False, store / "plain"),
                await _system(address, "stored+encrypted", True, store / "sealed"),
            ]
            systems = [system for _, system in made]
            async with (
                systems[0].serving(),
                systems[1].serving(),
                systems[2].serving(),
                systems[3].serving(),
            ):
                for system in systems:  # warm up
                    await w.w1_latency(system, "noop", 3)
                for _ in range(repeats):
                    for system in systems:
                        metrics = await w.w1_latency(system, "noop", w1_runs)
                        for key in ("run_median_ms", "step_mean_ms"):
                            results.setdefault(f"W1 noop {key} | {system.name}", []).append(
                                metrics[key]
                            )
                    for megabytes in sizes:
                        # Without a store only states under 2 MB can travel.
                        able = systems if megabytes < 2 else systems[2:]
                        for system in able:
                            seconds = (await w.w5_state(system, megabytes))["seconds"]
                            key = f"W5 state {megabytes:g} MB seconds | {system.name}"
                            results.setdefault(key, []).append(seconds)
                    for system in systems[2:]:
                        seconds = (await _input_run(system, 10))["seconds"]
                        results.setdefault(f"W5 input 10 MB seconds | {system.name}", []).append(
                            seconds
                        )
                    print(f"  repeat done ({load()})", file=sys.stderr)
    finally:
        await env.shutdown()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.security", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--w1-runs", type=int, default=50)
    parser.add_argument("--sizes", default="1,10,50", help="W5 state sizes in MB")
    args = parser.parse_args(argv)
    sizes = [float(size) for size in args.sizes.split(",")]
    print(f"before: {load()}")
    results = asyncio.run(run(args.repeats, args.w1_runs, sizes))
    print(f"after: {load()}")
    print("| measure | system | median | [min to max] |\n|---|---|---|---|")
    for key, values in results.items():
        measure, system = key.split(" | ")
        print(f"| {measure} | {system} | {statistics.median(values):.3g} | "
              f"[{min(values):.3g} to {max(values):.3g}] |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
