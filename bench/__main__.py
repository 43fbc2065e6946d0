"""``python -m bench``: run W1-W10 on agentflow, raw Temporal and asyncio; print the table.

Each workload runs ``repeats`` times, the systems interleaved within a repeat so that load from
elsewhere on the machine falls on all of them alike. ``BENCH_QUICK=1`` (or ``--quick``) runs
tiny sizes once: a smoke run, not a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from bench import (
    bus,
    bus_batch,
    bus_filter,
    cache,
    floor,
    llm,
    memory,
    pai_temporal,
    patterns,
    serve,
    streaming,
)
from bench import workloads as w
from bench.report import RESULTS, Report, load, machine, write_results
from bench.runner_system import RunnerSystem
from bench.server import start_server
from bench.systems import AgentflowSystem, AsyncioSystem, RawSystem


@dataclass
class Sizes:
    repeats: int = 3
    w1_runs: int = 100
    w2_flows: int = 200
    w3_agents: tuple[int, ...] = (50, 1000)
    w4_iterations: tuple[int, ...] = (500, 10_000)
    w5_megabytes: float = 1.0
    w6_sessions: int = 20
    w6_events: int = 50  # per session
    w7_events: int = 1000  # published to 3 subscribers (throughput)
    w7_latency_events: int = 100  # published one at a time (latency)
    w7_subscribers: int = 3
    w7_fan_out: int = 100  # subscribers of one event
    w7_fan_out_events: int = 10
    w7_batch_events: int = 1000  # to one subscriber, batched and not (W7B)
    w16_events: int = 10_000  # into a count pattern's workflows (W16)
    w16_keys: int = 1_000
    w9_runs: int = 50  # LLM calls each way (agentflow, pydantic-ai directly)
    w14_runs: int = 50  # runs each way (cache hit, miss, uncached)
    w11_sessions: int = 20  # POST /events against Runner.emit (bench/serve.py)
    w11_events: int = 25  # per session
    w10: memory.MemorySizes = field(default_factory=memory.MemorySizes)  # bench/memory.py


QUICK = Sizes(repeats=1, w1_runs=3, w2_flows=5, w3_agents=(5,), w4_iterations=(5,),
              w5_megabytes=0.1, w6_sessions=2, w6_events=3, w7_events=4,
              w7_latency_events=2, w7_fan_out=3, w7_fan_out_events=1, w7_batch_events=5,
              w16_events=20, w16_keys=2,
              w9_runs=2, w14_runs=2, w11_sessions=2, w11_events=3,
              w10=memory.QUICK_SIZES)  # fmt: skip


async def run_suite(env: WorkflowEnvironment, sizes: Sizes, only: set[str]) -> Report:
    client = env.client
    report = Report()
    af, local = AgentflowSystem(client), AgentflowSystem(client, local=True)
    raw, raw_local, plain = RawSystem(client), RawSystem(client, local=True), AsyncioSystem()
    everything: list[Any] = [af, local, raw, raw_local, plain]
    # The one-process runner (agents registered in code), beside the CLI worker's path.
    one, one_local = RunnerSystem(client), RunnerSystem(client, local=True)

    async def measure(
        name: str,
        systems: Sequence[Any],
        run: Callable[[Any], Awaitable[dict[str, float]]],
        repeats: int = sizes.repeats,
    ) -> None:
        if only and name.split()[0] not in only:
            return
        failed: set[str] = set()
        for _ in range(repeats):
            for system in systems:
                if system.name in failed:
                    continue
                try:
                    report.add(name, system.name, await run(system))
                except Exception as err:  # a failure is a finding: record it, go on
                    failed.add(system.name)
                    report.notes += [f"{name} on {system.name}: {type(err).__name__}: {err}", ""]
        print(f"  {name}: done ({load()})", file=sys.stderr)

    async with af.serving(), local.serving(), raw.serving(), raw_local.serving(), \
            one.serving(), one_local.serving():  # fmt: skip
        for system in [*everything, one, one_local]:  # warm up: imports, sandbox, connections
            await w.w1_latency(system, "noop", 3)
        for variant in ("noop", "sleep"):
            await measure(f"W1 latency, {variant}", [*everything, one, one_local],
                          partial(w.w1_latency, variant=variant, runs=sizes.w1_runs))  # fmt: skip
        for variant in ("noop", "sleep"):
            throughput = partial(w.w2_throughput, variant=variant, flows=sizes.w2_flows)
            await measure(f"W2 throughput, {variant}", everything, throughput)
        # Sessions: agentflow's, and a hand-written one with local activities as the floor
        # under local agents (W6's targets are about local agents).
        with_sessions = [af, local, raw_local, one, one_local]
        await measure("W6 session latency", with_sessions,
                      partial(w.w6_session_latency, sessions=sizes.w6_sessions,
                              events=sizes.w6_events))  # fmt: skip
        await measure("W6 session throughput", with_sessions,
                      partial(w.w6_session_throughput, sessions=sizes.w6_sessions,
                              events=sizes.w6_events))  # fmt: skip
        # The floor (bench/floor.py): a session event of 5 local agents against a bare Update.
        await measure("W6 floor", [local], partial(floor.w6_floor, events=4 * sizes.w6_events))
        for agents in sizes.w3_agents:
            await measure(f"W3 fan-out {agents}", everything,
                          partial(w.w3_fan_out, client=client, agents=agents))  # fmt: skip
        for iterations in sizes.w4_iterations:
            # 10,000 steps take minutes per system: once, to show it completes within bounds.
            once = 1 if iterations > 1000 else sizes.repeats
            loop = partial(w.w4_loop, client=client, iterations=iterations)
            await measure(f"W4 loop {iterations}", everything, loop, once)
        # Not raw-local: five 1 MB local results in one workflow task completion exceed
        # its 4 MB limit and the server terminates the run (bench/RESULTS.md, Findings).
        not_raw_local = [system for system in everything if system is not raw_local]
        await measure(f"W5 state {sizes.w5_megabytes:g} MB", not_raw_local,
                      partial(w.w5_state, megabytes=sizes.w5_megabytes))  # fmt: skip
        # The durable bus (agentflow only): publishes against starting the same flows directly.
        bus_first = itertools.cycle((True, False))  # which goes first, alternately per repeat
        await measure(f"W7 bus {sizes.w7_events} events, {sizes.w7_subscribers} subscribers", [af],
                      partial(bus.w7_bus, events=sizes.w7_events,
                              latency_events=sizes.w7_latency_events,
                              subscribers=sizes.w7_subscribers, bus_first=bus_first))  # fmt: skip
        await measure(f"W7 bus fan-out {sizes.w7_fan_out}", [af],
                      partial(bus.w7_fan_out, subscribers=sizes.w7_fan_out,
                              events=sizes.w7_fan_out_events))  # fmt: skip
        # A CEL-filtered subscription against a plain one (bench/bus_filter.py).
        await measure(f"W7F bus filter {sizes.w7_events} events", [af],
                      partial(bus_filter.w7_filter, events=sizes.w7_events,
                              subscribers=sizes.w7_subscribers,
                              filtered_first=itertools.cycle((True, False))))  # fmt: skip
        # A batched subscriber against an unbatched one (bench/bus_batch.py).
        await measure(f"W7B bus batch {sizes.w7_batch_events} events", [af],
                      partial(bus_batch.w7_batch, events=sizes.w7_batch_events,
                              batched_first=itertools.cycle((True, False))))  # fmt: skip
        # Event patterns (bench/patterns.py), once: 10,000 events take minutes.
        await measure(f"W16 patterns {sizes.w16_events} events, {sizes.w16_keys} keys", [af],
                      partial(patterns.w16_patterns, events=sizes.w16_events,
                              keys=sizes.w16_keys), 1)  # fmt: skip
        # Live streaming: W1 with streaming on against off, and how soon a watcher sees an agent.
        await measure("W8 streaming", [af], partial(streaming.w8_streaming, runs=sizes.w1_runs))
        # LLM calls against pydantic-ai called directly (bench/llm.py): no tools, 3 tool calls.
        for tools, label in ((False, "no tools"), (True, "3 tool calls")):
            await measure(f"W9 LLM call, {label}", [af],
                          partial(llm.w9_llm, runs=sizes.w9_runs, tools=tools))  # fmt: skip
        # CloudEvents over HTTP against Runner.emit (bench/serve.py).
        await measure(f"W11 serve {sizes.w11_sessions * sizes.w11_events} events", [af],
                      partial(serve.w11_serve, sessions=sizes.w11_sessions,
                              events=sizes.w11_events,
                              http_first=itertools.cycle((True, False))))  # fmt: skip
        # The result cache (bench/cache.py): a one-agent flow's hit against miss.
        await measure("W14 cache, handler", [af],
                      partial(cache.w14_handler, runs=sizes.w14_runs))  # fmt: skip
        await measure("W14 cache, LLM agent", [af], partial(cache.w14_llm, runs=sizes.w14_runs))
        # One model request and one tool call against pydantic_ai's Temporal integration.
        await measure("W15 LLM + tool vs pydantic-ai Temporal", [af],
                      partial(pai_temporal.w15_parity, runs=sizes.w9_runs))  # fmt: skip
        # Agent memory (bench/memory.py), once: loading 100,000 chunks into each store takes
        # minutes. Search and ingestion on sqlite-vec and pgvector, then memory per agent call.
        async with memory.W10(sizes.w10) as w10:
            for name, workload in memory.workloads(w10):
                await measure(name, [af], workload, 1)
        if not only or "W5" in only:
            report.notes += [
                "W5 10 MB returned by the first agent: " + await w.w5_too_large(af, 10),
                "",
                "W5 10 MB as the input of a run: " + await w.w5_too_large_input(af, 10),
            ]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    quick = bool(os.environ.get("BENCH_QUICK"))
    parser.add_argument("--quick", action="store_true", default=quick)
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W2")
    parser.add_argument("--server-defaults", action="store_true",
                        help="run on a dev server without agentflow's dynamic config")  # fmt: skip
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="file to update (nothing is written with --no-results)")  # fmt: skip
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    only = {part.strip().upper() for part in args.only.split(",") if part.strip()}
    header = machine()
    header.append(f"before: {load()}")
    report = asyncio.run(_run(sizes, only, not args.server_defaults))
    header.append(f"after: {load()}")
    header.append(
        f"sizes: {sizes}; dev server (in-memory persistence) dynamic config: "
        f"{'agentflow' if not args.server_defaults else 'server defaults'}"
    )
    print("\n".join(header))
    print(report.table())
    if runner := report.runner_table():
        print(f"\n{runner}")
    targets = report.targets_table()
    if targets:
        print(f"\n{targets}\n")
    print("\n".join(report.notes))
    if not args.no_results:
        write_results(report, header, args.results)
        print(f"\nwritten to {args.results}")
    return 0


async def _run(sizes: Sizes, only: set[str], dynamic_config: bool) -> Report:
    env = await start_server(dynamic_config)
    try:
        return await run_suite(env, sizes, only)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    sys.exit(main())
