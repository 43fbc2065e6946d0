"""AgentFlow: multi-agent flows from agentflow.toml, run as durable Temporal workflows.

Handlers import ``Event``, ``State`` and ``FatalError`` from here; applications use
``Runner`` to start flows and ``AgentflowPlugin`` to add agentflow to their own workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentflow.config import FlowConfig, load_config
from agentflow.errors import AgentflowError, ConfigError, FatalError, FlowFailedError
from agentflow.models import AgentResult, CallbackArgs, Event, FlowResult, State

if TYPE_CHECKING:
    from agentflow.client import FlowHandle, Runner
    from agentflow.sessions import EmitHandle, EventDeadLetteredError
    from agentflow.temporal import AgentflowPlugin

__all__ = [
    "AgentResult",
    "AgentflowError",
    "AgentflowPlugin",
    "CallbackArgs",
    "ConfigError",
    "EmitHandle",
    "Event",
    "EventDeadLetteredError",
    "FatalError",
    "FlowConfig",
    "FlowFailedError",
    "FlowHandle",
    "FlowResult",
    "Runner",
    "State",
    "load_config",
]

_LAZY = {"Runner": "agentflow.client", "FlowHandle": "agentflow.client",
         "AgentflowPlugin": "agentflow.temporal", "EmitHandle": "agentflow.sessions",
         "EventDeadLetteredError": "agentflow.sessions"}  # fmt: skip


def __getattr__(name: str) -> Any:
    # The client and plugin import the workflows package, which imports this package's
    # models: loading them lazily keeps handler and workflow imports light and acyclic.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agentflow' has no attribute {name!r}")
