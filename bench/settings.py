"""``python -m bench.settings``: W1/W2 on agentflow under different worker and server settings.

What the README's chosen settings rest on. Each setting runs on the same dev server, the
settings interleaved within each of ``repeats`` rounds; the server comparison starts a second
dev server with Temporal's default dynamic config.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from temporalio.worker import PollerBehaviorSimpleMaximum, UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench import workloads as w
from bench.report import Report, load
from bench.server import start_server
from bench.systems import AgentflowSystem, RawSystem

SETTINGS: dict[str, dict[str, Any]] = {
    "SDK defaults": {},  # with agentflow's sandbox runner (agentflow/sandbox.py)
    "stock sandbox runner": {"workflow_runner": SandboxedWorkflowRunner()},
    "no sandbox": {"workflow_runner": UnsandboxedWorkflowRunner()},
    "local agents": {"local": True},
    "local agents, stock sandbox runner": {
        "local": True,
        "workflow_runner": SandboxedWorkflowRunner(),
    },
    "local agents, no sandbox": {"local": True, "workflow_runner": UnsandboxedWorkflowRunner()},
    "eager workflow start": {"eager_start": True},
    "no workflow cache": {"max_cached_workflows": 0},
    "no eager activities": {"disable_eager_activity_execution": True},
    "pollers 10/10": {
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(10),
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(10),
    },
    "pollers 2/2": {
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(2),
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(2),
    },
}


async def sweep(runs: int, flows: int, repeats: int) -> Report:
    report = Report()
    env = await start_server()
    try:
        for _ in range(repeats):
            for name, options in SETTINGS.items():
                await _measure(report, AgentflowSystem(env.client, **options), name, runs, flows)
    finally:
        await env.shutdown()
    for dynamic_config in (True, False):
        label = "server: agentflow config" if dynamic_config else "server: defaults"
        env = await start_server(dynamic_config)
        try:
            for _ in range(repeats):
                for system in (AgentflowSystem(env.client), RawSystem(env.client)):
                    await _measure(report, system, f"{label}, {system.name}", runs, flows)
        finally:
            await env.shutdown()
    return report


async def _measure(report: Report, system: Any, name: str, runs: int, flows: int) -> None:
    async with system.serving():
        await w.w1_latency(system, "noop", 3)  # warm up
        latency = await w.w1_latency(system, "noop", runs)
        throughput = await w.w2_throughput(system, "noop", flows)
    report.add(name, "agentflow", {"W1 step_mean_ms": latency["step_mean_ms"],
                                   "W1 run_per_agent_ms": latency["run_per_agent_ms"],
                                   "W2 steps_per_s": throughput["steps_per_s"]})  # fmt: skip
    print(f"  {name}: {latency['step_mean_ms']:.1f} ms per step, "
          f"{latency['run_per_agent_ms']:.1f} ms per agent (run / 5), "
          f"{throughput['steps_per_s']:.0f} steps/s ({load()})", file=sys.stderr)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.settings", description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--flows", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    report = asyncio.run(sweep(args.runs, args.flows, args.repeats))
    print(settings_table(report))
    return 0


def settings_table(report: Report) -> str:
    """One line per setting: its metrics side by side (median [min to max])."""
    metrics = list(dict.fromkeys(row.metric for row in report.rows))
    lines = ["| setting | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for setting in dict.fromkeys(row.workload for row in report.rows):
        cells = {
            row.metric: row.cell("agentflow") for row in report.rows if row.workload == setting
        }
        lines.append(f"| {setting} | " + " | ".join(cells.get(m, "-") for m in metrics) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
