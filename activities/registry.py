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
from agentflow.config.handlers import Handler, import_handler, llm_paths
from agentflow.config.nested import child_dir


class AgentRegistry:
    """The handlers this worker may run, by import path, resolved once at start-up."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    @classmethod
    def from_configs(cls, configs: Iterable[tuple[FlowConfig, Path | None]]) -> AgentRegistry:
        registry = cls()
        for config, base_dir in configs:
            registry.add_config(config, base_dir)
        return registry

    def add_config(self, config: FlowConfig, base_dir: Path | None) -> None:
        paths = [agent.handler for agent in config.agents.values() if agent.handler]
        paths += llm_paths(config)  # LLM agents' tools and output models
        for path in paths + config.hooks.paths():  # [hooks] callbacks too
            if path not in self._handlers:
                self._handlers[path] = import_handler(path, base_dir)
        # Flows inside flows run on the parent's worker: their handlers, from their own files'
        # directories, are served here too.
        for agent, nested in config.nested.items():
            self.add_config(nested, child_dir(base_dir, config.agents[agent].flow or ""))

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
