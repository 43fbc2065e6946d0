"""W9, LLM calls: what agentflow adds to a model request over calling pydantic-ai directly in
one process. ``python -m bench.llm [--runs N] [--repeats N]`` (or ``make bench``).

A local server on 127.0.0.1 answers at once (tests/llm_server.py: OpenAI's wire format), so
what is measured is overhead, not a model. Two calls, each made ``runs`` times one after
another, both ways alternating run by run so load from elsewhere falls on both alike:

- ``W9 LLM call, no tools``: one model request. Direct: ``Agent.run`` of pydantic-ai with the
  same provider model agentflow builds, streamed as agentflow's LLM agents stream (an
  ``event_stream_handler`` that reads every event), so only what agentflow adds differs.
  agentflow: a flow of one LLM agent, ``Runner.run``
  (start → model request in the agent activity → result).
- ``W9 LLM call, 3 tool calls``: the model asks for a Python tool (``add``) three times, one
  call per step, then answers: 4 model requests and 3 tool calls. Direct: pydantic-ai runs
  the tool loop in process. agentflow: every model request and every tool call is its own
  activity (the durable tool loop), so a crash repeats none of them.

``overhead_ms`` = agentflow median - direct median; ``per_step_ms`` divides it by the model
requests and tool calls of one run (1 and 7).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, parse_config
from agentflow.worker.serve import build_worker
from bench.server import start_server
from bench.systems import REPO
from bench.workloads import Metrics, p95
from tests.llm_server import Answer, Calls, FakeLLM, Text

PROMPT = "You add numbers."
TOOL_ROUNDS = 3


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def script(tools: bool) -> list[Answer]:
    """What the fake model answers during one run."""
    calls: list[Answer] = [Calls([("add", {"a": n, "b": 1})]) for n in range(TOOL_ROUNDS)]
    return [*(calls if tools else []), Text("done")]


def flow(fake: FakeLLM, tools: bool) -> FlowConfig:
    agent: dict[str, Any] = {"system_prompt": PROMPT}
    if tools:
        agent["tools"] = ["bench.llm:add"]
    raw = {
        "agent_flow": {"name": f"bench-llm-{'tools' if tools else 'plain'}", "provider": "fake"},
        "providers": {"fake": {"type": "openai-compatible", "model": "bench",
                               "base_url": fake.url("openai-compatible")}},
        "orchestration": {"mode": "sequential", "sequential_agents": ["asker"],
                          "timeout_seconds": 120},
        "agents": {"asker": agent},
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


def direct_agent(fake: FakeLLM, tools: bool) -> Agent[None, str]:
    """pydantic-ai on its own, with the model agentflow's LLM agents use for this provider."""
    provider = OpenAIProvider(base_url=fake.url("openai-compatible"), api_key="unused")
    model = OpenAIChatModel("bench", provider=provider)
    return Agent(model, system_prompt=PROMPT, tools=[add] if tools else [])


async def _read_events(_ctx: Any, events: AsyncIterable[Any]) -> None:
    async for _ in events:
        pass


async def _timed(fake: FakeLLM, tools: bool, call: Callable[[], Awaitable[Any]]) -> float:
    fake.script[:] = script(tools)
    started = time.perf_counter()
    await call()
    elapsed = (time.perf_counter() - started) * 1000
    if fake.script:  # the run made fewer model requests than it should have
        raise RuntimeError(f"{len(fake.script)} scripted answers left after a run")
    return elapsed


async def w9_llm(system: Any, runs: int, tools: bool) -> Metrics:
    """``system`` is the suite's agentflow system (for its client); see the module docstring."""
    with FakeLLM() as fake:
        config = flow(fake, tools)
        queue = f"bench-llm-{uuid.uuid4().hex[:8]}"
        direct = direct_agent(fake, tools)
        async with build_worker(system.client, [(config, REPO)], task_queue=queue):
            runner = Runner(config, system.client, queue)
            ways: dict[str, Callable[[], Awaitable[Any]]] = {
                "agentflow": lambda: runner.run({"message": "1 + 1?"}),
                "direct": lambda: direct.run("1 + 1?", event_stream_handler=_read_events),
            }
            for way in ways.values():  # warm up: imports, connections, the worker's caches
                await _timed(fake, tools, way)
            times: dict[str, list[float]] = {"agentflow": [], "direct": []}
            for index in range(2 * runs):  # alternate which goes first
                name = ("agentflow", "direct")[index % 2]
                times[name].append(await _timed(fake, tools, ways[name]))
    if fake.invalid:
        raise RuntimeError(f"the fake sent replies the SDK rejects: {fake.invalid}")
    steps = 1 + 2 * TOOL_ROUNDS if tools else 1
    af, direct_ms = statistics.median(times["agentflow"]), statistics.median(times["direct"])
    return {"agentflow_median_ms": af, "agentflow_p95_ms": p95(times["agentflow"]),
            "direct_median_ms": direct_ms, "direct_p95_ms": p95(times["direct"]),
            "overhead_ms": af - direct_ms, "per_step_ms": (af - direct_ms) / steps}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.llm", description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    async def run() -> list[tuple[str, Metrics]]:
        env = await start_server()
        try:
            system = type("S", (), {"client": env.client})()
            return [
                (name, await w9_llm(system, args.runs, tools))
                for _ in range(args.repeats)
                for name, tools in (("no tools", False), ("3 tool calls", True))
            ]
        finally:
            await env.shutdown()

    for name, metrics in asyncio.run(run()):
        print(f"{name:>12}: " + "  ".join(f"{key} {value:.2f}" for key, value in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
