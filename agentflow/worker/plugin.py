"""The plugin that adds agentflow to a Temporal worker (or client, or Replayer): every
workflow, the agent activities, the interceptor and the sandbox runner, in one
``temporalio.plugin.SimplePlugin``."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.plugin import SimplePlugin

from agentflow.activities.agent import AgentActivities
from agentflow.activities.batch import LocalBatch
from agentflow.activities.batcher import batch_deliver
from agentflow.activities.bus import bus_publish
from agentflow.activities.compensate import CompensationActivities
from agentflow.activities.llm_tools import ToolActivities
from agentflow.activities.memory import MemoryActivities
from agentflow.activities.memory_ingest import IngestActivities
from agentflow.activities.registry import AgentRegistry
from agentflow.activities.route import decide_route
from agentflow.activities.session import session_checkpoint
from agentflow.worker.sandbox import faster_sandbox
from agentflow.worker.telemetry import AgentCallInterceptor
from agentflow.workflows.batcher import BatcherWorkflow
from agentflow.workflows.bus_registry import BusRegistryWorkflow
from agentflow.workflows.collaborative import CollaborativeFlow
from agentflow.workflows.dead_letter import DeadLetterWorkflow
from agentflow.workflows.ingest import IngestWorkflow
from agentflow.workflows.loop import LoopFlow
from agentflow.workflows.mixed import MixedFlow
from agentflow.workflows.pattern import PatternWorkflow
from agentflow.workflows.route import RouteFlow
from agentflow.workflows.sequential import SequentialFlow
from agentflow.workflows.session import SessionWorkflow

# Every workflow a worker serves: the five modes, then sessions, dead letters, the bus registry,
# memory ingestion.
ALL_WORKFLOWS: list[type] = [
    RouteFlow,
    SequentialFlow,
    CollaborativeFlow,
    LoopFlow,
    MixedFlow,
    SessionWorkflow,
    DeadLetterWorkflow,
    BusRegistryWorkflow,
    IngestWorkflow,
    BatcherWorkflow,  # a batched subscriber's batches, on its own task queue
    PatternWorkflow,  # [patterns.NAME]: one per flow, pattern and key, on the bus's queue
]


def _memory(registry: AgentRegistry) -> list[Callable[..., Any]]:
    """Memory-enabled agents' recall and remember, and ``agentflow memory ingest``'s files."""
    recall = MemoryActivities(registry)
    return [recall.retrieve, recall.remember, IngestActivities(registry).ingest_file]


class AgentflowPlugin(SimplePlugin):
    """Everything agentflow needs on a Temporal client or worker.

    On a client it sets the pydantic data converter; on a worker it also registers the mode
    workflows and the agent activity backed by ``registry`` (a dynamic activity serving every
    ``agent:NAME`` type, so the worker's application cannot have a dynamic activity of its
    own, and ``run_agent`` for runs from before that). Add it to an existing
    application with ``Client.connect(..., plugins=[AgentflowPlugin(registry)])``. A worker
    uses its client's converter; ``data_converter`` (from ``data_converter()``) is for a client
    or Replayer built with this plugin, when ``[security]`` or ``[payloads]`` is configured.
    """

    def __init__(
        self,
        registry: AgentRegistry | None = None,
        executor: Executor | None = None,
        data_converter: DataConverter | None = None,
    ):
        # `is not None`: a registry of a flow with only LLM agents is empty, hence falsy.
        agent = None if registry is None else AgentActivities(registry, executor)
        activities: list[Callable[..., Any]] | None = (
            None
            if agent is None or registry is None
            else [
                agent.run_named_agent,  # dynamic: every "agent:NAME" type
                agent.run_agent,  # runs from before the agent-activity-type patch
                agent.run_hooks,
                ToolActivities(registry, executor).run_tool,  # an LLM agent's tool call
                LocalBatch(agent).run_local_agents,  # consecutive local agents
                session_checkpoint,
                bus_publish,
                batch_deliver,  # a batched subscriber's batch into its session
                decide_route,  # route mode's [[orchestration.routes]]
                # a completed agent's compensate, when its run fails (a saga)
                CompensationActivities(registry, executor).run_compensation,
                *_memory(registry),
            ]
        )
        super().__init__(
            "agentflow",
            data_converter=data_converter or pydantic_data_converter,
            workflows=ALL_WORKFLOWS,
            activities=activities,
            # The "agent NAME" span, agent metrics and log lines (agentflow/telemetry.py).
            interceptors=[AgentCallInterceptor()] if registry is not None else None,
            # The stock sandbox, minus a per-payload detour (agentflow/sandbox.py).
            workflow_runner=faster_sandbox,
        )
