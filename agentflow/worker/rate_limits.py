"""``agents.X.rate_limit`` and ``[runtime]`` on the worker side.

A rate-limited agent's activities go to a task queue of its own (``agent_queue``; the
workflow schedules them there, workflows/_calls.py). Every worker of the flow also polls
that queue with Temporal's ``max_task_queue_activities_per_second``, which the *server*
enforces for the whole queue: the limit holds across all workers, not per process.
``[runtime] max_concurrent_agents`` bounds the agents one worker process runs at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Executor
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from agentflow.activities.registry import AgentRegistry
from agentflow.config import FlowConfig
from agentflow.config.registered import CodeRegistry
from agentflow.names import agent_queue
from agentflow.worker.plugin import AgentflowPlugin


def runtime_options(
    configs: Sequence[tuple[FlowConfig, Path | None]], options: dict[str, Any]
) -> dict[str, Any]:
    """Worker options from ``[runtime]``: ``max_concurrent_agents`` caps both regular and
    local agent activities (the smallest of the served flows'); explicit options win."""
    caps = [c.runtime.max_concurrent_agents for c, _ in configs if c.runtime.max_concurrent_agents]
    if not caps:
        return options
    cap = min(caps)
    return {"max_concurrent_activities": cap, "max_concurrent_local_activities": cap} | options


def queue_limits(
    configs: Sequence[tuple[FlowConfig, Path | None]], task_queue: str
) -> dict[str, float]:
    """Each rate-limited agent's queue -> its requests per second (the lowest, if two flows
    on this task queue share an agent name)."""
    limits: dict[str, float] = {}
    for config, _ in configs:
        for agent, rate in config.rate_limited_agents().items():
            queue = agent_queue(task_queue, agent)
            limits[queue] = min(rate, limits.get(queue, rate))
    return limits


@contextlib.asynccontextmanager
async def rate_limited_workers(
    client: Client,
    configs: Sequence[tuple[FlowConfig, Path | None]],
    task_queue: str,
    executor: Executor | None = None,
    code: CodeRegistry | None = None,
    **worker_options: Any,
) -> AsyncIterator[list[Worker]]:
    """Run one worker per rate-limited agent queue beside the flows' own worker."""
    registry = AgentRegistry.from_configs(configs, code)
    workers = [
        Worker(
            client,
            task_queue=queue,
            plugins=[AgentflowPlugin(registry, executor)],
            graceful_shutdown_timeout=timedelta(seconds=10),
            max_task_queue_activities_per_second=rate,
            **worker_options,
        )
        for queue, rate in queue_limits(configs, task_queue).items()
    ]
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield workers
