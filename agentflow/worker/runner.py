"""A runner that also serves its flow in this process: agents and callbacks registered in code,
and ``async with runner:`` (AgenticGoKit's ``Start`` / ``Stop``).

``agentflow.Runner`` is this class. The client-only ``agentflow.client.runner.Runner`` starts
runs and emits events for workers elsewhere; this one adds the code registry and a worker of
its own, and, when no Temporal server is configured and none answers on localhost:7233, an
embedded dev server whose data stays in ``.agentflow/`` (so it is as durable as any other).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from types import TracebackType
from typing import Self

from temporalio.client import Client

from agentflow.client import runner as client_runner
from agentflow.client import telemetry
from agentflow.client.connection import connect_flow
from agentflow.config import FlowConfig
from agentflow.config.handlers import Handler
from agentflow.config.registered import REGISTRY, CodeRegistry, Decorators
from agentflow.errors import ConfigError
from agentflow.worker.devserver import server_for
from agentflow.worker.rate_limits import handler_threads
from agentflow.worker.serve import HANDLER_THREADS, HandlerPool, abandon_stuck_handlers, serving

log = logging.getLogger("agentflow.runner")


class Runner(client_runner.Runner, Decorators):
    """Starts runs of one flow, and (``async with runner:``) serves it in this process with
    the agents and callbacks registered on it (and with ``@agentflow.agent``)."""

    def __init__(
        self,
        config: FlowConfig,
        client: Client | None = None,
        task_queue: str | None = None,
        *,
        eager_start: bool = False,
        base_dir: Path | None = None,
    ) -> None:
        super().__init__(config, client, task_queue, eager_start=eager_start)
        self.code = CodeRegistry()
        self._file_config = config
        self._base_dir = base_dir
        self._stack: contextlib.AsyncExitStack | None = None
        self._executor: HandlerPool | None = None
        self._own_client = False
        self._eager_before = eager_start
        self._bind()

    @classmethod
    def _for_file(
        cls, config: FlowConfig, path: Path, client: Client | None, task_queue: str | None
    ) -> Self:
        # The file's directory is where handler modules are looked up and .agentflow/ is kept.
        return cls(config, client, task_queue, base_dir=path.parent)

    # --- the code registry (AgenticGoKit's RegisterAgent, RegisterCallback, ...) -------------

    def register_agent(
        self, name: str, handler: Handler, compensate: Handler | None = None
    ) -> None:
        """Register ``handler`` (sync or async ``(event, state)`` → State, dict or None) as
        the agent ``name``. It keeps its ``[agents.NAME]`` settings (retries, timeout, local,
        hooks); an agent the orchestration names needs no table of its own. ``compensate``
        (``(event, state)``, sync or async) undoes it if its run fails later (a saga)."""
        self.code.register_agent(name, handler, compensate)
        self._bind()

    def register_callback(self, hook: str, name: str, fn: Handler) -> None:
        """Run ``fn(args: CallbackArgs)`` at ``hook`` (``before_agent_run``, ``agent_error``,
        ... or ``all``; AgenticGoKit's ``BeforeAgentRun`` too), as a ``[hooks]`` callback."""
        self.code.register_callback(hook, name, fn)
        self._bind()

    def unregister_callback(self, hook: str, name: str) -> None:
        self.code.unregister_callback(hook, name)
        self._bind()

    def callbacks(self) -> dict[str, dict[str, Handler]]:
        """Hook → callback name → function, as registered in code (AgenticGoKit's
        ``GetCallbackRegistry``)."""
        return self.code.merged(REGISTRY).callbacks()

    def _bind(self) -> FlowConfig:
        self.config = self.code.merged(REGISTRY).bind(self._file_config)
        return self.config

    # --- serving in this process (AgenticGoKit's Start / Stop) ----------------------------------

    async def serve(self) -> None:
        """Serve the flow in this process until ``shutdown``: a worker with the registered
        agents and callbacks on the runner's task queue, and the embedded dev server when no
        Temporal server is configured and none answers. Registering is closed from here on."""
        if self._stack is not None:
            raise ConfigError("the runner is serving already; call shutdown() first")
        config = self._bind()
        code = self.code.merged(REGISTRY)
        stack = contextlib.AsyncExitStack()
        try:
            if self._client is None:
                address, server, line = await server_for(config)
                if server is not None:
                    address = await stack.enter_async_context(server)
                log.info(line)
                if address is not None:
                    temporal = config.temporal.model_copy(update={"address": address})
                    config = config.model_copy(update={"temporal": temporal})
                interceptors = telemetry.interceptors(config.telemetry)
                self._client = await connect_flow(config, interceptors)
                self._own_client = True
            threads = handler_threads([(self.config, self._base_dir)], HANDLER_THREADS)
            self._executor = HandlerPool(threads, thread_name_prefix="agent")
            served = serving(self._client, [(self.config, self._base_dir)],
                             task_queue=self.task_queue, executor=self._executor,
                             code=code)  # fmt: skip
            worker = await stack.enter_async_context(served)
        except BaseException:
            await stack.aclose()
            raise
        for registry in (self.code, REGISTRY):
            registry.freeze("the runner is serving")
        # A run's first workflow task goes straight to this process's worker.
        self._eager_before, self.eager_start = self.eager_start, True
        self._stack = stack
        log.info("serving flow %r on task queue %r in this process", self.config.name,
                 worker.task_queue)  # fmt: skip

    async def shutdown(self) -> None:
        """Stop serving: let running agents finish (up to the worker's graceful shutdown
        timeout), as ``agentflow worker`` does on SIGTERM, then stop the embedded server."""
        stack, self._stack = self._stack, None
        if stack is None:
            return
        self.eager_start = self._eager_before
        try:
            await stack.aclose()
        finally:
            if self._executor is not None:
                abandon_stuck_handlers(self._executor)
            for registry in (self.code, REGISTRY):
                registry.freeze("")
            if self._own_client:  # its server may be gone: the next serve() connects anew
                self._client, self._own_client = None, False

    async def __aenter__(self) -> Runner:
        await self.serve()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.shutdown()
