"""The agentflow worker: serves every mode workflow and the ``run_agent`` activity, and the
durable bus (its shards and registry, on the ``agentflow-bus`` task queue)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from agentflow import telemetry
from agentflow.bus import BUS_TASK_QUEUE, FAN_OUT_HANDLER
from agentflow.bus_client import fan_out, register
from agentflow.config import FlowConfig, load_config
from agentflow.logs import log_context
from agentflow.registry import AgentRegistry
from agentflow.temporal import AgentflowPlugin, connect_flow

log = logging.getLogger("agentflow.worker")

# Sync handlers run here; sized like the worker's default activity slots.
HANDLER_THREADS = 100


def build_worker(
    client: Client,
    configs: Sequence[tuple[FlowConfig, Path | None]],
    *,
    task_queue: str | None = None,
    executor: ThreadPoolExecutor | None = None,
    **worker_options: Any,
) -> Worker:
    """A Worker for ``configs`` (their handlers form the registry) on ``task_queue``."""
    registry = AgentRegistry.from_configs(configs)
    queue = task_queue or configs[0][0].temporal.task_queue
    return Worker(
        client,
        task_queue=queue,
        plugins=[AgentflowPlugin(registry, executor)],
        graceful_shutdown_timeout=timedelta(seconds=10),
        **worker_options,
    )


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
        graceful_shutdown_timeout=timedelta(seconds=10),
        **worker_options,
    )


@contextlib.asynccontextmanager
async def serving(
    client: Client,
    configs: Sequence[tuple[FlowConfig, Path | None]],
    *,
    task_queue: str | None = None,
    executor: ThreadPoolExecutor | None = None,
    **worker_options: Any,
) -> AsyncIterator[Worker]:
    """Run the flows' worker and a bus worker; once both poll, register the flows'
    subscriptions on the bus (so nothing published from then on misses them)."""
    worker = build_worker(client, configs, task_queue=task_queue, executor=executor,
                          **worker_options)  # fmt: skip
    async with worker, _shared_bus_worker(client, executor, **worker_options):
        flows = await register(client, [config for config, _ in configs], worker.task_queue)
        if flows:
            log.info("subscriptions of %s registered on the bus", ", ".join(flows))
        yield worker


class _BusWorker:
    def __init__(self, worker: Worker) -> None:
        self.worker, self.users = worker, 0
        self.running = asyncio.create_task(worker.run())


# One bus worker per client: Temporal allows one worker per task queue and client in a process.
_BUS_WORKERS: dict[int, _BusWorker] = {}


@contextlib.asynccontextmanager
async def _shared_bus_worker(
    client: Client, executor: ThreadPoolExecutor | None, **worker_options: Any
) -> AsyncIterator[Worker]:
    shared = _BUS_WORKERS.get(id(client))
    if shared is None:
        shared = _BUS_WORKERS[id(client)] = _BusWorker(
            build_bus_worker(client, executor, **worker_options)
        )
    shared.users += 1
    try:
        yield shared.worker
    finally:
        shared.users -= 1
        if shared.users == 0:
            del _BUS_WORKERS[id(client)]
            await shared.worker.shutdown()
            await shared.running


async def run_worker(config_paths: Sequence[str | Path], task_queue: str | None = None) -> None:
    """Run a worker until SIGINT/SIGTERM, then finish running activities and exit."""
    configs = [(load_config(path), Path(path).parent) for path in config_paths]
    first = configs[0][0]
    log_context()
    client = await connect_flow(first, telemetry.interceptors(first.telemetry))
    with ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="agent") as executor:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        flows = ", ".join(f"{config.name} ({config.mode})" for config, _ in configs)
        async with serving(client, configs, task_queue=task_queue, executor=executor) as worker:
            log.info(
                "worker on task queue %r at %s (namespace %s), flows: %s",
                worker.task_queue, client.service_client.config.target_host, client.namespace,
                flows,
            )  # fmt: skip
            await stop.wait()
            log.info("shutting down: letting running agents finish")
