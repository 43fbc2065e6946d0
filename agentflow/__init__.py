"""AgentFlow: multi-agent flows from agentflow.toml, run as durable Temporal workflows.

Handlers import ``Event``, ``State`` and ``FatalError`` from here; applications use
``Runner`` to start flows (and to serve them in the same process, with agents registered in
code: ``runner.register_agent``, ``@agentflow.agent``), and ``AgentflowPlugin`` to add
agentflow to their own workers.

The packages, top to bottom (each imports only those below it; docs/architecture.md):
``cli`` → ``inspect`` → ``worker`` → ``workflows`` | ``activities`` → ``client`` →
``models`` → ``config``, with ``names``, ``errors`` and ``limits`` under them all.
"""

from __future__ import annotations

from temporalio import workflow

# The workflows live in agentflow.workflows, so Temporal's sandbox runs this file anew for
# every workflow run. Passed through, these imports take the worker's modules: the run sees
# the same classes as the worker, and the library is not imported once per run.
with workflow.unsafe.imports_passed_through():
    from agentflow.activities.emit import EmitError, broadcast, emit
    from agentflow.client.inputs import make_event as new_event
    from agentflow.client.runner import FlowHandle
    from agentflow.client.sessions import EmitHandle, EventDeadLetteredError
    from agentflow.config import FlowConfig, load_config
    from agentflow.config.registered import agent, callback
    from agentflow.errors import AgentflowError, ApprovalRequired, ConfigError, FatalError
    from agentflow.models.flow import (
        AgentResult,
        CallbackArgs,
        Event,
        FlowFailedError,
        FlowResult,
        State,
    )
    from agentflow.worker.plugin import AgentflowPlugin
    from agentflow.worker.runner import Runner

__all__ = [
    "AgentResult",
    "AgentflowError",
    "AgentflowPlugin",
    "ApprovalRequired",
    "CallbackArgs",
    "ConfigError",
    "EmitError",
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
    "agent",
    "broadcast",
    "callback",
    "emit",
    "load_config",
    "new_event",
]
