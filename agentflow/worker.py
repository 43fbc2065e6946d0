"""The agentflow worker: serves every mode workflow and the ``run_agent`` activity."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from agentflow import telemetry
from agentflow.config import FlowConfig, load_config
from agentflow.logs import log_context
from agentflow.registry import AgentRegistry
from agentflow.temporal import AgentflowPlugin, connect

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


async def run_worker(config_paths: Sequence[str | Path], task_queue: str | None = None) -> None:
    """Run a worker until SIGINT/SIGTERM, then finish running activities and exit."""
    configs = [(load_config(path), Path(path).parent) for path in config_paths]
    first = configs[0][0]
    log_context()
    client = await connect(first.temporal, telemetry.interceptors(first.telemetry))
    with ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="agent") as executor:
        worker = build_worker(client, configs, task_queue=task_queue, executor=executor)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        flows = ", ".join(f"{config.name} ({config.mode})" for config, _ in configs)
        log.info(
            "worker on task queue %r at %s (namespace %s), flows: %s",
            worker.task_queue, client.service_client.config.target_host, client.namespace, flows,
        )  # fmt: skip
        async with worker:
            await stop.wait()
            log.info("shutting down: letting running agents finish")
