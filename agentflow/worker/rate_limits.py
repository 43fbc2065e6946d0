"""``agents.X.rate_limit`` and ``[runtime]`` on the worker side.

A rate-limited agent's activities go to a task queue of its own (``agent_queue``; the
workflow schedules them there, workflows/_calls.py). Every worker of the flow also polls
that queue with Temporal's ``max_task_queue_activities_per_second``, which the *server*
enforces for the whole queue: the limit holds across all workers, not per process.
``[runtime]`` bounds what one worker process runs at once (slots, pollers, workflow cache).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Executor
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from agentflow.activities.registry import AgentRegistry
from agentflow.config import FlowConfig
from agentflow.config.registered import CodeRegistry
from agentflow.names import agent_queue
from agentflow.worker.plugin import AgentflowPlugin


def runtime_options(
    configs: Sequence[tuple[FlowConfig, Path | None]], options: dict[str, Any]
) -> dict[str, Any]:
    """Worker options from ``[runtime]`` (RuntimeConfig.worker_options): slots, pollers and the
    workflow cache, each the smallest that the served flows set; explicit options win."""
    merged: dict[str, int] = {}
    for config, _ in configs:
        for key, value in config.runtime.worker_options().items():
            merged[key] = min(value, merged.get(key, value))
    found: dict[str, Any] = dict(merged)
    for key, option in POLLER_OPTIONS.items():
        if key in found:
            found[option] = PollerBehaviorSimpleMaximum(found.pop(key))
    return found | options


def handler_threads(configs: Sequence[tuple[FlowConfig, Path | None]], least: int) -> int:
    """Threads for sync handlers: ``least``, or as many as the agent slots [runtime] sets, so
    that a sync agent never waits for a thread while the worker has a slot for it."""
    options = runtime_options(configs, {})
    slots: list[int] = [options.get(key, least) for key in SLOT_KEYS]
    return max(least, *slots)


SLOT_KEYS = ("max_concurrent_activities", "max_concurrent_local_activities")
# [runtime] poller counts -> the Worker's poller behaviours (a simple maximum of polls).
POLLER_OPTIONS = {"workflow_task_pollers": "workflow_task_poller_behavior",
                  "activity_task_pollers": "activity_task_poller_behavior"}  # fmt: skip


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
