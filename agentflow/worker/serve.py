"""The agentflow worker: serves every mode workflow and the ``run_agent`` activity, and the
durable bus (its shards and registry, on the ``agentflow-bus`` task queue; the bus worker is
agentflow/bus_worker.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from temporalio.client import Client
from temporalio.worker import Worker

from agentflow.activities.registry import AgentRegistry
from agentflow.client import telemetry
from agentflow.client.bus import register
from agentflow.client.connection import connect_flow, shared_connection
from agentflow.client.signing import signing_ring, use_signing
from agentflow.client.visibility import require_search_attributes
from agentflow.config import FlowConfig, load_config
from agentflow.config.expressions import warm_up
from agentflow.config.registered import REGISTRY, CodeRegistry, import_agent_modules
from agentflow.names import LEGACY_TASK_QUEUE
from agentflow.worker.bus_worker import shared_bus_worker
from agentflow.worker.logs import configure_logging
from agentflow.worker.plugin import AgentflowPlugin
from agentflow.worker.queues import (
    queue_groups,
    warn_of_legacy_runs,
    warn_of_other_flows,
    worker_identity,
)
from agentflow.worker.rate_limits import handler_threads, rate_limited_workers, runtime_options

log = logging.getLogger("agentflow.worker")
_WARMING: set[asyncio.Task[None]] = set()  # referenced until done (asyncio keeps weak refs)

# Sync handlers run here; sized like the worker's default activity slots (or [runtime]'s).
HANDLER_THREADS = 100


def build_worker(
    client: Client,
    configs: Sequence[tuple[FlowConfig, Path | None]],
    *,
    task_queue: str | None = None,
    executor: ThreadPoolExecutor | None = None,
    code: CodeRegistry | None = None,
    **worker_options: Any,
) -> Worker:
    """A Worker for ``configs`` (their handlers, and ``code``'s agents and callbacks, form the
    registry) on ``task_queue`` (else the first flow's own), its identity naming the flows;
    ConfigError if an agent that code must register is missing."""
    registry = AgentRegistry.from_configs(configs, code)
    if any(config.is_llm_agent(agent) for config, _ in configs for agent in config.agents):
        import agentflow.activities.llm  # noqa: F401 - the LLM library, loaded now, not in the first call
    queue = task_queue or configs[0][0].task_queue  # else the first flow's own
    flows = (config.name for config, _ in configs)
    worker_options.setdefault("identity", worker_identity(client.identity, flows))
    return Worker(
        client,
        task_queue=queue,
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
    code: CodeRegistry | None = None,
    **worker_options: Any,
) -> AsyncIterator[Worker]:
    """Run the flows' workers (one per task queue: each flow's own, or all on ``task_queue``)
    and a bus worker; once they poll, register the flows' subscriptions on the bus (so nothing
    published from then on misses them). Yields the first flow's worker."""
    await require_search_attributes(client)
    for config, _ in configs:  # [security] signing: sign publishes, verify fan-outs
        use_signing(client, signing_ring(config.security))
    # CEL (bus filters, routes) builds its parser on first use: now, beside the start-up.
    _WARMING.add(warming := asyncio.create_task(asyncio.to_thread(warm_up)))
    warming.add_done_callback(_WARMING.discard)
    groups = queue_groups(configs, task_queue)
    for queue, group in groups.items():
        await warn_of_other_flows(client, queue, [config.name for config, _ in group])
    if task_queue != LEGACY_TASK_QUEUE:
        await warn_of_legacy_runs(client, [config.name for config, _ in configs])
    _SERVING[0] += 1
    try:
        # The bus worker stops last and quickly (its fan-out is short and safe to repeat), so
        # the flows' workers get their whole grace period within the shutdown bound.
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(shared_bus_worker(client, executor, **worker_options))
            workers = [await stack.enter_async_context(
                _queue_worker(client, queue, group, executor, code, worker_options)
            ) for queue, group in groups.items()]  # fmt: skip
            flows = await register(
                client, [config for config, _ in configs], task_queue, confirm=True
            )
            if flows:
                log.info("subscriptions of %s registered on the bus", ", ".join(flows))
            yield workers[0]
    finally:
        _SERVING[0] -= 1
        if not _SERVING[0]:
            await _close_mcp_sessions()


@contextlib.asynccontextmanager
async def _queue_worker(
    client: Client,
    queue: str,
    configs: Sequence[tuple[FlowConfig, Path | None]],
    executor: ThreadPoolExecutor | None,
    code: CodeRegistry | None,
    worker_options: dict[str, Any],
) -> AsyncIterator[Worker]:
    """One task queue's worker, and a worker per rate-limited agent queue beside it."""
    # [runtime] slots, pollers, cache; rate-limited agents get a worker on their own queue.
    options = runtime_options(configs, worker_options)
    worker = build_worker(client, configs, task_queue=queue, executor=executor, code=code,
                          **options)  # fmt: skip
    async with worker, rate_limited_workers(client, configs, queue, executor, code, **options):
        yield worker


# serving()s running in this process: the last to stop closes the MCP sessions they share.
_SERVING = [0]


async def _close_mcp_sessions() -> None:
    """Close the MCP server sessions the agents' tool calls opened (in this event loop, the
    one that opened them), so stdio servers exit with the worker instead of outliving it."""
    if (
        "agentflow.activities.mcp.tools" not in sys.modules
    ):  # no tool call used MCP: nothing to close
        return
    from agentflow.activities.mcp import tools as mcp

    try:
        await mcp.close_servers()
    except Exception:
        log.warning("closing the MCP server sessions failed", exc_info=True)


async def run_worker(
    config_paths: Sequence[str | Path],
    task_queue: str | None = None,
    agent_modules: Sequence[str] = (),
) -> None:
    """Run a worker until SIGINT/SIGTERM, then let running agents finish and return.

    The shutdown is bounded: agents still running after the worker's graceful shutdown
    timeout are cancelled, and sync handlers that ignore it (a thread cannot be stopped) are
    abandoned, not waited for; Temporal retries their attempts on another worker. The process
    should exit when this returns (``agentflow worker`` does, with ``os._exit``): a stuck
    handler thread would otherwise hold the interpreter's exit until the watchdog ends it.
    """
    configs = load_with_code(config_paths, agent_modules)
    shared_connection([config for config, _ in configs])  # one client serves them all
    first = configs[0][0]
    configure_logging(first.logging)  # [logging]: level, json or console, file
    client = await connect_flow(first, telemetry.interceptors(first.telemetry))
    executor = HandlerPool(handler_threads(configs, HANDLER_THREADS), thread_name_prefix="agent")
    watchdog: threading.Timer | None = None
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        served = queue_groups(configs, task_queue)
        flows = ", ".join(f"{config.name} ({config.mode})" for config, _ in configs)
        async with serving(client, configs, task_queue=task_queue, executor=executor,
                           code=REGISTRY) as worker:  # fmt: skip
            log.info(
                "worker on task queue%s %s at %s (namespace %s), flows: %s",
                "s" if len(served) > 1 else "", ", ".join(map(repr, served)),
                client.service_client.config.target_host, client.namespace, flows,
            )  # fmt: skip
            if first.payloads is None and client.data_converter.external_storage is not None:
                log.info("large payloads go to .agentflow/payloads (the dev server's default)")
            await stop.wait()
            grace = worker.config().get("graceful_shutdown_timeout") or timedelta()
            log.info(
                "shutting down: letting running agents finish (up to %.0f s)",
                grace.total_seconds(),
            )
            watchdog = _exit_after(grace + SHUTDOWN_MARGIN)
    finally:
        stuck = abandon_stuck_handlers(executor)
        if watchdog is not None and not stuck:
            watchdog.cancel()


def load_with_code(
    config_paths: Sequence[str | Path], agent_modules: Sequence[str] = ()
) -> list[tuple[FlowConfig, Path | None]]:
    """The flow files, each bound to the agents and callbacks that ``agent_modules`` (and
    its own ``[agent_flow] agent_modules``) register with ``@agentflow.agent``."""
    if agent_modules:
        import_agent_modules(agent_modules, Path.cwd())
    configs = [(load_config(path), Path(path).parent) for path in config_paths]
    return [(REGISTRY.bind(config, str(path)), base) for (config, base), path in
            zip(configs, config_paths, strict=True)]  # fmt: skip


# Beyond the graceful shutdown timeout: time for the SDK to cancel agents and report them.
SHUTDOWN_MARGIN = timedelta(seconds=5)

_P = ParamSpec("_P")
_T = TypeVar("_T")


class HandlerPool(ThreadPoolExecutor):
    """The sync handlers' thread pool; counts the calls running, to report stuck ones."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix)
        self._lock = threading.Lock()
        self.running = 0

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        def counted() -> _T:
            with self._lock:
                self.running += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return super().submit(counted)


def abandon_stuck_handlers(executor: HandlerPool) -> int:
    """Shut the pool down without waiting; the number of handler calls still running."""
    # ThreadPoolExecutor's own exit waits for every thread: one stuck handler (a network call
    # without a timeout, say) would keep a stopped worker alive for as long as it hangs.
    executor.shutdown(wait=False, cancel_futures=True)
    stuck = executor.running
    if stuck:
        log.warning(
            "%d sync agent handler(s) still running after they were cancelled; exiting "
            "without them (Temporal retries their attempts)",
            stuck,
        )
    return stuck


def _exit_after(delay: timedelta) -> threading.Timer:
    """End the process if the shutdown has not finished after ``delay``.

    A daemon thread, so it fires even while the SDK waits for an async handler that ignores
    its cancellation, or while the interpreter waits for stuck handler threads at exit.
    """

    def exit_now() -> None:
        log.error(
            "still running %.0f s after the stop signal; exiting now (Temporal retries the "
            "agents that were running)",
            delay.total_seconds(),
        )
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(delay.total_seconds(), exit_now)
    timer.daemon = True
    timer.start()
    return timer
