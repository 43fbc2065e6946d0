"""Agents and callbacks registered in code, beside the ones a flow file names by import path.

A program registers them on its runner (``runner.register_agent("processor", fn)``,
``runner.register_callback("before_agent_run", "monitor", fn)``) or, for workers started from
the CLI, in a module with the decorators ``@agentflow.agent("processor")`` and
``@agentflow.callback("before_agent_run")`` (``agentflow worker --agents pkg.module``, or
``[agent_flow] agent_modules``). Either way the flow file stays the contract: an agent that the
orchestration names but ``[agents]`` lacks is one that code must register, and an agent in
``[agents]`` without a ``handler`` (an LLM agent by default) becomes the registered function.

Binding writes a marker into the config (``handler = "<code>:NAME"``, and ``<code>:HOOK:NAME``
in ``[hooks]``). The marker travels in the config snapshot of every run, so a run says which of
its agents are code, and the worker's registry maps each marker to the registered function.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from agentflow.config._base import HOOK_POINTS, MAX_AGENT_NAME_BYTES, did_you_mean
from agentflow.config.agent import AgentConfig
from agentflow.config.flow import FlowConfig
from agentflow.config.handlers import Handler, import_failure
from agentflow.errors import ConfigError

CODE_PREFIX = "<code>:"
# AgenticGoKit's hook names (HookBeforeAgentRun, ...) and their spellings in [hooks].
HOOK_ALIASES = {
    "BeforeEventHandling": "before_event_handling",
    "AfterEventHandling": "after_event_handling",
    "BeforeAgentRun": "before_agent_run",
    "AfterAgentRun": "after_agent_run",
    "AgentError": "agent_error",
    "AllHooks": "all",
}
F = TypeVar("F", bound=Callable[..., Any])


def code_handler(name: str) -> str:
    """The ``handler`` of an agent that code registers."""
    return f"{CODE_PREFIX}{name}"


def code_callback(hook: str, name: str) -> str:
    """The ``[hooks]`` entry of a callback that code registers."""
    return f"{CODE_PREFIX}{hook}:{name}"


def code_compensation(name: str) -> str:
    """The ``compensate`` of an agent whose compensation code registers."""
    return f"{CODE_PREFIX}compensate:{name}"


def is_code(path: str | None) -> bool:
    return path is not None and path.startswith(CODE_PREFIX)


def hook_point(hook: str) -> str:
    """``hook`` as a ``[hooks]`` key (AgenticGoKit's names accepted); ConfigError if unknown."""
    point = HOOK_ALIASES.get(hook, hook)
    if point not in HOOK_POINTS:
        known = (*HOOK_POINTS, *HOOK_ALIASES)
        raise ConfigError(
            f"unknown hook {hook!r}{did_you_mean(hook, known)}; allowed: {', '.join(HOOK_POINTS)}"
            " (or AgenticGoKit's BeforeAgentRun, AgentError, ...)"
        )
    return point


class Decorators:
    """``agent`` and ``callback``, the decorator forms of ``register_agent`` and
    ``register_callback`` (the name defaults to the function's)."""

    def register_agent(
        self, name: str, handler: Handler, compensate: Handler | None = None
    ) -> None:
        raise NotImplementedError

    def register_callback(self, hook: str, name: str, fn: Handler) -> None:
        raise NotImplementedError

    def agent(
        self, name: str | None = None, *, compensate: Handler | None = None
    ) -> Callable[[F], F]:
        """Decorator: ``@runner.agent("processor")`` (``compensate=fn``: its saga undo step)."""

        def register(handler: F) -> F:
            self.register_agent(name or str(getattr(handler, "__name__", "")), handler, compensate)
            return handler

        return register

    def callback(self, hook: str, name: str | None = None) -> Callable[[F], F]:
        """Decorator: ``@runner.callback("agent_error")``."""

        def register(fn: F) -> F:
            self.register_callback(hook, name or str(getattr(fn, "__name__", "")), fn)
            return fn

        return register


class CodeRegistry(Decorators):
    """Agents and callbacks registered in code, by name; frozen once a worker serves them."""

    def __init__(self) -> None:
        self._agents: dict[str, Handler] = {}
        self._compensations: dict[str, Handler] = {}  # agent -> its compensate function
        self._callbacks: dict[str, dict[str, Handler]] = {point: {} for point in HOOK_POINTS}
        self._frozen = ""

    def register_agent(
        self, name: str, handler: Handler, compensate: Handler | None = None
    ) -> None:
        """Register ``handler`` (sync or async ``(event, state)``) as the agent ``name``;
        ``compensate`` (sync or async ``(event, state)``) undoes it when its run fails later."""
        self._check_open(f"register agent {name!r}")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"agent name {name!r}: must be a non-empty string")
        if len(name.encode()) > MAX_AGENT_NAME_BYTES:
            raise ConfigError(
                f"agent name {name[:40]!r}...: {len(name.encode())} bytes; at most "
                f"{MAX_AGENT_NAME_BYTES} (it goes into Temporal activity ids)"
            )
        _check_callable(f"agent {name!r}", handler)
        if self._agents.get(name, handler) is not handler:
            raise ConfigError(
                f"agent {name!r} is registered twice ({_named(self._agents[name])} and "
                f"{_named(handler)}); register each name once"
            )
        self._agents[name] = handler
        if compensate is not None:
            _check_callable(f"compensation of agent {name!r}", compensate)
            self._compensations[name] = compensate

    def register_callback(self, hook: str, name: str, fn: Handler) -> None:
        """Run ``fn(args: CallbackArgs)`` at ``hook`` (a ``[hooks]`` key, or ``all``), after
        the flow file's own callbacks there; it may change the state or reject the event."""
        point = hook_point(hook)
        self._check_open(f"register callback {name!r}")
        if not isinstance(name, str) or not name.strip() or ":" in name:
            raise ConfigError(f"callback name {name!r}: must be a non-empty string without ':'")
        _check_callable(f"callback {name!r}", fn)
        if self._callbacks[point].get(name, fn) is not fn:
            raise ConfigError(
                f"callback {name!r} is registered twice at {point}; unregister it first"
            )
        self._callbacks[point][name] = fn

    def unregister_callback(self, hook: str, name: str) -> None:
        point = hook_point(hook)
        self._check_open(f"unregister callback {name!r}")
        if name not in self._callbacks[point]:
            known = ", ".join(self._callbacks[point]) or "none"
            raise ConfigError(f"no callback {name!r} at {point}; registered there: {known}")
        del self._callbacks[point][name]

    def agents(self) -> dict[str, Handler]:
        return dict(self._agents)

    def callbacks(self) -> dict[str, dict[str, Handler]]:
        """Hook -> callback name -> function (a copy: AgenticGoKit's GetCallbackRegistry)."""
        return {point: dict(named) for point, named in self._callbacks.items() if named}

    def handlers(self) -> dict[str, Handler]:
        """Marker path -> function, for the worker's registry."""
        found = {code_handler(name): fn for name, fn in self._agents.items()}
        found |= {code_compensation(name): fn for name, fn in self._compensations.items()}
        for point, named in self._callbacks.items():
            found |= {code_callback(point, name): fn for name, fn in named.items()}
        return found

    def freeze(self, why: str) -> None:
        self._frozen = why

    def _check_open(self, what: str) -> None:
        if self._frozen:
            raise ConfigError(
                f"cannot {what}: {self._frozen}; register agents and callbacks before it starts"
            )

    def merged(self, other: CodeRegistry) -> CodeRegistry:
        """This registry and ``other`` (same name, other function: ConfigError)."""
        both = CodeRegistry()
        for registry in (self, other):
            for name, handler in registry._agents.items():
                both.register_agent(name, handler, registry._compensations.get(name))
            for point, named in registry._callbacks.items():
                for name, fn in named.items():
                    both.register_callback(point, name, fn)
        return both

    def bind(self, config: FlowConfig, source: str = "the flow file") -> FlowConfig:
        """``config`` with its agents and callbacks that code registers marked as such."""
        agents, orchestration = dict(config.agents), config.orchestration
        # Collaborative mode that lists no agent (and has none in [agents]) runs every agent
        # code registers, as AgenticGoKit's does.
        every = config.mode == "collaborative" and not orchestration.collaborative_agents
        if every and self._agents:
            orchestration = orchestration.model_copy(
                update={"collaborative_agents": list(self._agents)}
            )
        for name in self._agents:
            spec = agents.get(name)
            if spec is None:
                if config.mode == "route" or every:  # any agent may be a route's target
                    agents[name] = AgentConfig(handler=code_handler(name))
                continue
            if clash := _defined_in_file(spec):
                raise ConfigError(
                    f"agent {name!r} is defined twice: {clash} in {source}, and registered in "
                    "code; keep one (an agent registered in code may keep its [agents] table "
                    "for its settings, without handler, flow or auto_llm = true)"
                )
            agents[name] = spec.model_copy(update={"handler": code_handler(name)})
        agents = self._bind_compensations(agents, source)
        hooks = {
            point: [path for path in getattr(config.hooks, point) if not is_code(path)]
            + [code_callback(point, name) for name in named]
            for point, named in self._callbacks.items()
        }
        hooks_config = config.hooks.model_copy(update=hooks)
        return config.model_copy(
            update={"agents": agents, "hooks": hooks_config, "orchestration": orchestration}
        )

    def _bind_compensations(
        self, agents: dict[str, AgentConfig], source: str
    ) -> dict[str, AgentConfig]:
        """``agents`` with the compensations code registers marked (a table added if none)."""
        for name in self._compensations:
            spec = agents.get(name) or AgentConfig(handler=code_handler(name))
            if spec.compensate is not None and not is_code(spec.compensate):
                raise ConfigError(
                    f"agent {name!r} has two compensations: compensate = {spec.compensate!r} "
                    f"in {source}, and one registered in code; keep one"
                )
            agents[name] = spec.model_copy(update={"compensate": code_compensation(name)})
        return agents


def _defined_in_file(spec: AgentConfig) -> str | None:
    if spec.handler is not None and not is_code(spec.handler):
        return f"handler = {spec.handler!r}"
    if spec.flow is not None:
        return f"flow = {spec.flow!r}"
    if spec.auto_llm:
        return "auto_llm = true"
    return None


# Agents and callbacks that modules register with ``@agentflow.agent`` / ``@agentflow.callback``.
REGISTRY = CodeRegistry()
agent = REGISTRY.agent
callback = REGISTRY.callback


def import_agent_modules(modules: Iterable[str], base_dir: Path | None = None) -> None:
    """Import the modules that register agents and callbacks (the flow file's directory is
    searched first); ConfigError naming the module if one does not import."""
    if base_dir is not None and str(base_dir.resolve()) not in sys.path:
        sys.path.insert(0, str(base_dir.resolve()))
    for module in modules:
        if not module or not all(part.isidentifier() for part in module.split(".")):
            raise ConfigError(f"--agents {module!r}: must be a module path such as 'pkg.agents'")
        try:
            importlib.import_module(module)
        except (Exception, SystemExit) as err:
            raise ConfigError(
                f"--agents {module!r}: cannot import it: {import_failure(err)}"
            ) from err


def _check_callable(what: str, fn: Any) -> None:
    if not callable(fn) or inspect.isclass(fn):
        raise ConfigError(
            f"{what}: {fn!r} is not a function (a {type(fn).__name__}); register a function or "
            "coroutine function"
        )


def _named(fn: Handler) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)!s}"
