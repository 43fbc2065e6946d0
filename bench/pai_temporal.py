"""W15, a durable LLM agent against Pydantic AI's own Temporal integration. ``python -m
bench.pai_temporal [--runs N] [--concurrent N] [--repeats N]`` (or ``--only W15``).

One run = one model request that asks for a tool, one call of that tool (``bench.llm:add``, a
pure function), one model request that answers. The same fake server answers both systems
(tests/llm_server.py, OpenAI's wire format; ``Scripted`` answers by the conversation, not by a
queue, so concurrent runs each get a tool call first and the final text second), on the same
dev server, in the same process, alternating run by run:

- ``agentflow``: a flow of one LLM agent (``tools = ["bench.llm:add"]``), ``Runner.run``: the
  flow's workflow, and every model request and the tool call its own activity. Every model
  request streams (docs/llm-agents.md).
- ``agentflow_plain``: the same flow with ``stream = false`` on its agent: its model requests
  are made whole, as pai's are (the like-for-like pair of ``pai``).
- ``pai``: ``pydantic_ai.durable_exec.temporal``: an ``Agent`` with ``TemporalDurability``,
  run by a one-line workflow (``agent.run(prompt)``), served by a worker with
  ``PydanticAIPlugin`` (client) and ``AgentPlugin``: each model request (not streamed: no
  ``event_stream_handler``) and the tool call are activities.
- ``pai_stream``: the same with an ``event_stream_handler`` that reads every event, as
  agentflow's agents stream: model requests stream inside their activity; Pydantic AI then
  hands the tool-call events to the handler in activities of their own.

Metrics per system: ``*_median_ms`` / ``*_p95_ms`` (start → result, one run at a time),
``*_runs_per_s`` (``runs`` runs, at most ``concurrent`` in flight), ``*_activities``,
``*_events`` and ``*_history_kb`` (per run, from a fetched history; local activities count as
activities), ``ratio`` = agentflow median ÷ pai median (target ≤ 1.1), ``ratio_stream`` the
same against pai_stream, ``ratio_plain`` = agentflow_plain median ÷ pai median (the
non-streamed pair), ``throughput_ratio`` = pai runs/s ÷ agentflow runs/s and
``throughput_ratio_plain`` = pai runs/s ÷ agentflow_plain runs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterable, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.durable_exec.temporal import AgentPlugin, PydanticAIPlugin, TemporalDurability
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, parse_config
from agentflow.worker.serve import build_worker
from bench.llm import PROMPT, add
from bench.server import start_server
from bench.systems import REPO
from bench.workloads import Metrics, p95
from tests.llm_server import Answer, Calls, FakeLLM, Reply, Text

SYSTEMS = ("agentflow", "agentflow_plain", "pai", "pai_stream")
WORKFLOW = "BenchPaiAgentRun"  # bench-only: not one of agentflow's names
# Pydantic AI agents by name, set before the worker starts. This module is passed through the
# workflow sandbox, so the workflow reads the objects built here, with the fake's port.
AGENTS: dict[str, Agent[None, str]] = {}


class Scripted(FakeLLM):
    """Answers by the conversation: a tool call until the tool's result is in, then text."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._lock = threading.Lock()

    def answer(self, path: str, body: dict[str, Any]) -> Reply:
        answered = any(message.get("role") == "tool" for message in body.get("messages", []))
        reply: Answer = Text("done") if answered else Calls([("add", {"a": 1, "b": 1})])
        with self._lock:  # the script is a shared queue: one reply at a time
            self.script[:] = [reply]
            return super().answer(path, body)


@workflow.defn(name=WORKFLOW)
class PaiAgentRun:
    @workflow.run
    async def run(self, agent: str, prompt: str) -> str:
        result = await AGENTS[agent].run(prompt)
        return result.output


async def _read_events(_ctx: Any, events: AsyncIterable[Any]) -> None:
    async for _ in events:
        pass


def pai_agent(fake: FakeLLM, name: str, stream: bool) -> Agent[None, str]:
    provider = OpenAIProvider(base_url=fake.url("openai-compatible"), api_key="unused")
    durability = TemporalDurability(event_stream_handler=_read_events if stream else None)
    return Agent(
        OpenAIChatModel("bench", provider=provider),
        name=name,
        system_prompt=PROMPT,
        tools=[add],
        capabilities=[durability],
    )


def flow(fake: FakeLLM, stream: bool = True) -> FlowConfig:
    """The agentflow side; ``stream = False``: the agent's model requests are not streamed."""
    raw = {
        "agent_flow": {"name": "bench-pai-parity" + ("" if stream else "-plain"),
                       "provider": "fake"},
        "providers": {"fake": {"type": "openai-compatible", "model": "bench",
                               "base_url": fake.url("openai-compatible")}},
        "orchestration": {"mode": "sequential", "sequential_agents": ["asker"],
                          "timeout_seconds": 120},
        "agents": {"asker": {"system_prompt": PROMPT, "tools": ["bench.llm:add"],
                             "stream": stream}},
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


async def history_counts(client: Client, workflow_id: str) -> tuple[int, int, Counter[str]]:
    """Activities (scheduled + local) and events of one run, and its activity and event types
    (``bytes``: the history's encoded size)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kinds: Counter[str] = Counter(bytes=sum(event.ByteSize() for event in history.events))
    for event in history.events:
        kinds["event:" + EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")] += 1
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            kinds[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            kinds[f"signal:{event.workflow_execution_signaled_event_attributes.signal_name}"] += 1
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            kinds[f"marker:{event.marker_recorded_event_attributes.marker_name}"] += 1
    skipped = ("event:", "signal:", "marker:core_patch", "bytes")  # not activities
    activities = sum(n for kind, n in kinds.items() if not kind.startswith(skipped))
    return activities, len(history.events), kinds


class _Ways:
    """One run of each system, by name; each returns its workflow id."""

    def __init__(self, runners: tuple[Runner, Runner], pai: Client, queue: str) -> None:
        (self.runner, self.plain), self.pai, self.queue = runners, pai, queue

    async def agentflow(self, runner: Runner) -> str:
        handle = await runner.start({"message": "1 + 1?"})
        await handle.result()
        return handle.workflow_id

    async def pydantic(self, agent: str) -> str:
        workflow_id = f"bench-pai-{uuid.uuid4().hex[:12]}"
        await self.pai.execute_workflow(
            PaiAgentRun.run, args=[agent, "1 + 1?"], id=workflow_id, task_queue=self.queue
        )
        return workflow_id

    def by_name(self) -> dict[str, Callable[[], Awaitable[str]]]:
        return {
            "agentflow": lambda: self.agentflow(self.runner),
            "agentflow_plain": lambda: self.agentflow(self.plain),
            "pai": lambda: self.pydantic("pai"),
            "pai_stream": lambda: self.pydantic("pai_stream"),
        }


async def _timed(call: Callable[[], Awaitable[str]]) -> tuple[float, str]:
    started = time.perf_counter()
    workflow_id = await call()
    return (time.perf_counter() - started) * 1000, workflow_id


async def _throughput(call: Callable[[], Awaitable[str]], runs: int, concurrent: int) -> float:
    gate = asyncio.Semaphore(concurrent)

    async def one() -> None:
        async with gate:
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    return runs / (time.perf_counter() - started)


async def w15_parity(system: Any, runs: int, concurrent: int = 10) -> Metrics:
    """``system`` is the suite's agentflow system (for its client); see the module docstring."""
    client: Client = system.client
    pai_client = await Client.connect(
        client.service_client.config.target_host,
        namespace=client.namespace,
        plugins=[PydanticAIPlugin()],
    )
    with Scripted() as fake:
        config, plain = flow(fake), flow(fake, stream=False)
        AGENTS.update(pai=pai_agent(fake, "pai", False), pai_stream=pai_agent(fake, "pai_s", True))
        af_queue, pai_queue = (f"bench-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("af", "pai"))
        restrictions = SandboxRestrictions.default.with_passthrough_modules("bench")
        pai_worker = Worker(
            pai_client,
            task_queue=pai_queue,
            workflows=[PaiAgentRun],
            plugins=[AgentPlugin(agent) for agent in AGENTS.values()],
            workflow_runner=SandboxedWorkflowRunner(restrictions=restrictions),
        )
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(
                build_worker(client, [(config, REPO), (plain, REPO)], task_queue=af_queue)
            )
            await stack.enter_async_context(pai_worker)
            runners = Runner(config, client, af_queue), Runner(plain, client, af_queue)
            ways = _Ways(runners, pai_client, pai_queue).by_name()
            for way in ways.values():  # warm up: imports, sandbox, connections, caches
                await way()
                await way()
            times: dict[str, list[float]] = {name: [] for name in SYSTEMS}
            last: dict[str, str] = {}
            for index in range(runs):  # alternate which goes first
                order = SYSTEMS[index % len(SYSTEMS) :] + SYSTEMS[: index % len(SYSTEMS)]
                for name in order:
                    elapsed, last[name] = await _timed(ways[name])
                    times[name].append(elapsed)
            rates: dict[str, list[float]] = {name: [] for name in SYSTEMS}
            for index in range(len(SYSTEMS)):
                for name in SYSTEMS[index:] + SYSTEMS[:index]:
                    rates[name].append(await _throughput(ways[name], runs, concurrent))
            counts = {name: await history_counts(client, last[name]) for name in SYSTEMS}
    AGENTS.clear()
    if fake.invalid:
        raise RuntimeError(f"the fake sent replies the SDK rejects: {fake.invalid}")
    metrics: Metrics = {}
    for name in SYSTEMS:
        metrics[f"{name}_median_ms"] = statistics.median(times[name])
        metrics[f"{name}_p95_ms"] = p95(times[name])
        metrics[f"{name}_runs_per_s"] = statistics.median(rates[name])
        metrics[f"{name}_activities"] = float(counts[name][0])
        metrics[f"{name}_events"] = float(counts[name][1])
        metrics[f"{name}_history_kb"] = counts[name][2]["bytes"] / 1000
    metrics["ratio"] = metrics["agentflow_median_ms"] / metrics["pai_median_ms"]
    metrics["ratio_plain"] = metrics["agentflow_plain_median_ms"] / metrics["pai_median_ms"]
    metrics["ratio_stream"] = metrics["agentflow_median_ms"] / metrics["pai_stream_median_ms"]
    metrics["throughput_ratio"] = metrics["pai_runs_per_s"] / metrics["agentflow_runs_per_s"]
    plain_rate = metrics["agentflow_plain_runs_per_s"]
    metrics["throughput_ratio_plain"] = metrics["pai_runs_per_s"] / plain_rate
    KINDS.update({name: counts[name][2] for name in SYSTEMS})
    return metrics


KINDS: dict[str, Counter[str]] = {}  # the last run's activity types, per system (printed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pai_temporal", description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)

    async def run() -> list[Metrics]:
        env = await start_server()
        try:
            system = type("S", (), {"client": env.client})()
            return [
                await w15_parity(system, args.runs, args.concurrent) for _ in range(args.repeats)
            ]
        finally:
            await env.shutdown()

    for metrics in asyncio.run(run()):
        print("  ".join(f"{key} {value:.2f}" for key, value in metrics.items()))
    for name, kinds in KINDS.items():
        print(f"{name}: {', '.join(f'{kind} {n}' for kind, n in sorted(kinds.items()))}")
    return 0


if __name__ == "__main__":  # run as bench.pai_temporal: the sandbox passes that module through
    from bench.pai_temporal import main as imported_main

    sys.exit(imported_main())
