"""The bus worker every agentflow worker process runs: the bus's own task queue (its shard
sessions with the fan-out, its registry, its dead letters), one per client, shared by every
``serving()`` of that client in the process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from agentflow.activities.registry import AgentRegistry
from agentflow.client.bus import fan_out
from agentflow.names import BUS_TASK_QUEUE, FAN_OUT_HANDLER
from agentflow.worker.plugin import AgentflowPlugin

log = logging.getLogger("agentflow.worker")


# A fan-out cut short by shutdown runs again elsewhere (its deliveries dedupe).
BUS_GRACE_SECONDS = 2


def build_bus_worker(
    client: Client, executor: ThreadPoolExecutor | None = None, **worker_options: Any
) -> Worker:
    """A Worker for the bus's own task queue: its shard sessions (the fan-out), registry and
    dead letters. Every agentflow worker runs one, so the bus works while any worker does."""
    registry = AgentRegistry()
    registry.add(FAN_OUT_HANDLER, fan_out)
    return Worker(
        client,
        task_queue=BUS_TASK_QUEUE,
        plugins=[AgentflowPlugin(registry, executor)],
        graceful_shutdown_timeout=timedelta(seconds=BUS_GRACE_SECONDS),
        **worker_options,
    )


class _BusWorker:
    def __init__(self, worker: Worker) -> None:
        self.worker, self.users = worker, 0
        self.running = asyncio.create_task(worker.run())


# One bus worker per client: Temporal allows one worker per task queue and client in a process.
_BUS_WORKERS: dict[int, _BusWorker] = {}


@contextlib.asynccontextmanager
async def shared_bus_worker(
    client: Client, executor: ThreadPoolExecutor | None, **worker_options: Any
) -> AsyncIterator[Worker]:
    """This client's bus worker, started by its first user and stopped by its last."""
    shared = _BUS_WORKERS.get(id(client))
    if shared is not None and shared.running.done():
        # Its run() ended while flows still used it (a fatal poll error, say): nothing polls
        # the bus's task queue, so the registry and every fan-out would wait on no one.
        error = None if shared.running.cancelled() else shared.running.exception()
        log.warning("the bus worker had stopped (%s); starting a new one", error or "cancelled")
        del _BUS_WORKERS[id(client)]
        shared = None
    if shared is None:
        shared = _BUS_WORKERS[id(client)] = _BusWorker(
            build_bus_worker(client, executor, **worker_options)
        )
    shared.users += 1
    try:
        yield shared.worker
    finally:
        shared.users -= 1
        if shared.users == 0 and _BUS_WORKERS.get(id(client)) is shared:
            del _BUS_WORKERS[id(client)]
            await shared.worker.shutdown()
            await shared.running
