"""The worker-side agent registry: which handler runs for which ``handler = "module:function"``
(and which callback for each ``[hooks]`` entry).

Workflows never import this module (it imports user code); the ``run_agent`` activity does.
A worker serves only the handlers named in the config files it was started with, so a
workflow input cannot make it call arbitrary importable functions.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path

from agentflow.config import FlowConfig
from agentflow.config.code_checks import unbound_agents, unbound_message, unrunnable
from agentflow.config.handlers import Handler, import_handler, llm_paths
from agentflow.config.nested import child_dir
from agentflow.config.registered import CODE_PREFIX, CodeRegistry, is_code
from agentflow.errors import ConfigError


class AgentRegistry:
    """The handlers this worker may run, by import path, resolved once at start-up."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        # The flows served, by name: an emit() inside a handler sends with its flow's config.
        self.configs: dict[str, FlowConfig] = {}

    @classmethod
    def from_configs(
        cls, configs: Iterable[tuple[FlowConfig, Path | None]], code: CodeRegistry | None = None
    ) -> AgentRegistry:
        """The handlers of ``configs`` (bound to ``code``'s registrations already); ConfigError
        naming the agents that code must register and ``code`` does not hold."""
        registry = cls()
        for path, handler in (code or CodeRegistry()).handlers().items():
            registry.add(path, handler)
        for config, base_dir in configs:
            registry.add_config(config, base_dir)
        return registry

    def add_config(self, config: FlowConfig, base_dir: Path | None) -> None:
        self.configs.setdefault(config.name, config)
        if problem := unrunnable(config):
            raise ConfigError(problem)
        if unbound := [name for name in unbound_agents(config) if name not in self._code_names()]:
            raise ConfigError(unbound_message(config, unbound, f"flow {config.name!r}"))
        paths = [agent.handler for agent in config.agents.values() if agent.handler]
        paths += llm_paths(config)  # LLM agents' tools and output models
        paths += [agent.compensate for agent in config.agents.values() if agent.compensate]
        for path in paths + config.hooks.paths():  # [hooks] callbacks too
            if path not in self._handlers and not is_code(path):
                self._handlers[path] = import_handler(path, base_dir)
        # Flows inside flows run on the parent's worker: their handlers, from their own files'
        # directories, are served here too.
        for agent, nested in config.nested.items():
            self.add_config(nested, child_dir(base_dir, config.agents[agent].flow or ""))

    def _code_names(self) -> set[str]:
        return {path.removeprefix(CODE_PREFIX) for path in self._handlers if is_code(path)}

    def add(self, path: str, handler: Handler) -> None:
        """Register a handler under an import path (for code that builds workers itself)."""
        self._handlers[path] = handler

    def get(self, path: str) -> Handler | None:
        return self._handlers.get(path)

    def is_async(self, path: str) -> bool:
        return inspect.iscoroutinefunction(self._handlers[path])

    def __contains__(self, path: object) -> bool:
        return path in self._handlers

    def __len__(self) -> int:
        return len(self._handlers)
