"""The flow's own tables: ``[agent_flow]``, ``[temporal]``, ``[telemetry]``, and
``FlowConfig``, the whole file (its agents, orchestration and the other tables are each in a
module of their own: agent.py, orchestration.py, llm.py, events.py, ...)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agentflow.config._base import (
    MAX_FLOW_NAME_BYTES,
    AgentName,
    ModeName,
    StrictModel,
    TaskQueueName,
)
from agentflow.config.agent import AgentConfig, RetrySettings
from agentflow.config.breaker import check_fallbacks
from agentflow.config.bus import BusConfig
from agentflow.config.cache import CacheStoreConfig
from agentflow.config.events import ErrorRoutingConfig, HooksConfig, SessionsConfig
from agentflow.config.llm import LLMConfig, ProviderConfig, provider_kind, provider_name
from agentflow.config.mcp import MCPConfig
from agentflow.config.memory import EMBEDDING_PROVIDERS, AgentMemoryConfig, memory_table
from agentflow.config.orchestration import OrchestrationConfig
from agentflow.config.patterns import PatternConfig
from agentflow.config.runtime import LoggingConfig, RuntimeConfig
from agentflow.config.security import PayloadsConfig, SecurityConfig
from agentflow.config.topics import matches_any, matches_unfiltered, patterns_of
from agentflow.names import flow_task_queue

# AgentConfig, OrchestrationConfig and RetrySettings were defined here: still importable.
__all__ = [
    "AgentConfig",
    "FlowConfig",
    "FlowMeta",
    "OrchestrationConfig",
    "RetrySettings",
    "TelemetryConfig",
    "TemporalConfig",
]


class FlowMeta(StrictModel):
    """``[agent_flow]``: what the flow is called."""

    name: str = "agentflow"
    version: str = "0.0.0"
    description: str = ""
    # AgenticGoKit: the default of [llm] provider (a kind, or a [providers] name).
    provider: str = ""
    # Modules that register agents and callbacks in code (@agentflow.agent), imported by the
    # worker and by `agentflow validate` (agentflow/config/registered.py).
    agent_modules: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _usable_name(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be empty (workflow ids start with it)")
        if len(name.encode()) > MAX_FLOW_NAME_BYTES:
            raise ValueError(
                f"is {len(name.encode())} bytes; at most {MAX_FLOW_NAME_BYTES} (it goes into "
                "Temporal workflow ids and search attributes)"
            )
        return name


class TemporalConfig(StrictModel):
    """``[temporal]``: overrides of Temporal's standard client settings (TEMPORAL_ADDRESS, …)."""

    address: str | None = None
    namespace: str | None = None
    # Unset: the flow's own queue, ``agentflow:NAME`` (FlowConfig.task_queue).
    task_queue: TaskQueueName | None = None
    profile: str | None = None
    tls: bool | None = None
    # Where run links point (the Temporal UI's base URL); unset: a dev server's UI, on the
    # gRPC port + 1000 (agentflow/client/connection.py ui_url).
    ui_url: str | None = None

    @field_validator("ui_url")
    @classmethod
    def _web_address(cls, url: str | None) -> str | None:
        if url is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
            raise ValueError("must be the Temporal UI's http:// or https:// address")
        return url


class TelemetryConfig(StrictModel):
    """``[telemetry]``: OpenTelemetry spans and metrics of flows and agents (off by default)."""

    exporter: Literal["none", "console", "otlp"] = "none"
    # OTLP/HTTP endpoint; unset means OTEL_EXPORTER_OTLP_ENDPOINT or http://localhost:4318.
    endpoint: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    service_name: str = "agentflow"


class FlowConfig(StrictModel):
    """A whole agentflow.toml. A snapshot of it travels in every workflow input."""

    agent_flow: FlowMeta = Field(default_factory=FlowMeta)
    llm: LLMConfig | None = None
    orchestration: OrchestrationConfig
    agents: dict[AgentName, AgentConfig] = Field(default_factory=dict)
    hooks: HooksConfig = Field(default_factory=HooksConfig)
    error_routing: ErrorRoutingConfig = Field(default_factory=ErrorRoutingConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    bus: BusConfig = Field(default_factory=BusConfig)
    # [patterns.NAME]: event patterns over time windows, matched by the bus (config/patterns.py).
    patterns: dict[AgentName, PatternConfig] = Field(default_factory=dict)
    # Client/worker settings, not flow logic: excluded from the snapshot that travels in the
    # workflow input (and so from history), since telemetry headers may hold credentials.
    temporal: TemporalConfig = Field(default_factory=TemporalConfig, exclude=True)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig, exclude=True)
    # [security] (payload encryption) and [payloads] (external storage): off unless present.
    security: SecurityConfig = Field(default_factory=SecurityConfig, exclude=True)
    payloads: PayloadsConfig | None = Field(None, exclude=True)
    # Where cached agent results are kept (agents' ``cache``): a worker setting.
    cache: CacheStoreConfig = Field(default_factory=CacheStoreConfig, exclude=True)
    # LLM providers and MCP servers travel in the snapshot (secrets only as ${VAR}).
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    mcp: MCPConfig = Field(default_factory=MCPConfig)
    # Worker settings ([runtime], [logging], [agent_memory]: its connection may hold secrets).
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, exclude=True)
    logging: LoggingConfig = Field(default_factory=LoggingConfig, exclude=True)
    agent_memory: AgentMemoryConfig | None = Field(None, exclude=True)
    _memory = field_validator("agent_memory", mode="before")(memory_table)
    # The flow file of each agent with ``flow = ...``, as loaded when this config was (set by
    # the loader, never written in TOML): it travels in the snapshot, so a run is pinned to it.
    nested: dict[str, FlowConfig] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.agent_flow.name

    @property
    def mode(self) -> ModeName:
        return self.orchestration.mode

    @property
    def task_queue(self) -> str:
        """Where the flow's runs go: ``[temporal] task_queue``, else the flow's own queue
        (``agentflow:NAME``), so that only workers serving this flow get its work."""
        return self.temporal.task_queue or flow_task_queue(self.name)

    def enabled_agents(self) -> list[str]:
        return [name for name, agent in self.agents.items() if agent.enabled]

    def subscribers(self, topic: str) -> list[str]:
        """The enabled agents subscribed to ``topic``, in config order (disabled ones never
        receive)."""
        names = self.enabled_agents()
        # A subscriber whose matching entries all carry ``when``, or with ``accepts_from``, gets
        # the event through the durable bus, whose fan-out activity checks them.
        return [
            name
            for name in names
            if matches_unfiltered(self.agents[name].subscribes, topic)
            and self.agents[name].accepts_from is None
            and self.agents[name].batch is None  # batched: through the bus, in batches
        ]

    def topics(self) -> list[str]:
        """Every topic (or pattern) an enabled agent or the flow subscribes to, in order of
        first mention."""
        names = self.enabled_agents()
        agents = (t for name in names for t in patterns_of(self.agents[name].subscribes))
        return list(dict.fromkeys([*agents, *patterns_of(self.bus.subscribes)]))

    def may_publish(self, agent: str | None, topic: str) -> bool:
        """Whether ``agent`` (None: a client of this file) may publish to ``topic``."""
        allowed = self.bus.publishes if agent is None else self.agents[agent].publishes
        return allowed is None or matches_any(allowed, topic)

    def max_attempts(self, agent: str) -> int:
        """Temporal's maximum_attempts for an agent: its first try plus ``retry_attempts``
        (or its ``retry_policy``'s ``max_retries``)."""
        spec = self.agents[agent]
        if spec.retry_policy is not None:
            return 1 + spec.retry_policy.max_retries
        own = spec.retry_attempts
        return 1 + (self.orchestration.retry_attempts if own is None else own)

    def is_local(self, agent: str) -> bool:
        """Whether ``agent`` runs as a local activity (its ``local``, else the flow default)."""
        own = self.agents[agent].local
        if self.agents[agent].flow is not None:
            return False  # a flow agent is a child workflow, never an activity
        if self.agents[agent].rate_limit is not None:
            return False  # the rate limit is its task queue's; local activities have none
        return self.orchestration.local_agents if own is None else own

    def retry_settings(self, agent: str) -> RetrySettings:
        spec = self.agents[agent]
        if (policy := spec.retry_policy) is not None:
            return RetrySettings(
                initial_interval_seconds=policy.base_delay_ms / 1000,
                backoff_coefficient=policy.backoff_factor,
                maximum_interval_seconds=policy.max_delay_ms / 1000,
                non_retryable_errors=self.orchestration.retry.non_retryable_errors,
            )
        return spec.retry or self.orchestration.retry

    def is_llm_agent(self, agent: str) -> bool:
        """Whether ``agent`` asks an LLM: auto_llm = true, or (unset) no handler and no flow."""
        spec = self.agents[agent]
        if spec.auto_llm is not None:
            return spec.auto_llm
        return spec.handler is None and spec.flow is None

    def rate_limited_agents(self) -> dict[str, float]:
        """Enabled agents with a ``rate_limit`` -> their requests per second."""
        return {
            name: limit.requests_per_second
            for name in self.enabled_agents()
            if (limit := self.agents[name].rate_limit) is not None
        }

    @model_validator(mode="after")
    def _runtime_timeout(self) -> FlowConfig:
        # [runtime] timeout_seconds is the default of every agent's own timeout_seconds.
        if (default := self.runtime.timeout_seconds) is not None:
            for agent in self.agents.values():
                if "timeout_seconds" not in agent.model_fields_set:
                    agent.timeout_seconds = default
        return self

    @model_validator(mode="after")
    def _breaker_fallbacks(self) -> FlowConfig:
        check_fallbacks(self.agents)  # another handler agent each (agentflow/config/breaker.py)
        return self

    @model_validator(mode="after")
    def _agent_memory(self) -> FlowConfig:
        # An agent with memory_enabled gets [agent_memory]'s defaults when the table is absent.
        if self.agent_memory is None and any(a.memory_enabled for a in self.agents.values()):
            self.agent_memory = AgentMemoryConfig()
        memory = self.agent_memory
        if memory is not None and memory.enabled and memory.embedding.provider is None:
            memory.embedding.provider = self.embedding_default()
        return self

    def embedding_default(self) -> str:
        """``[agent_memory.embedding] provider`` when unset: the kind of the flow's LLM
        provider (``[llm] provider``, else ``agent_flow.provider``; a ``[providers.NAME]``
        table's ``type``) when that kind has embeddings, else ``dummy``."""
        name = provider_name(self.llm, self.agent_flow.provider, None)
        table = self.providers.get(name) if name else None
        kind = (table.type if table else None) or provider_kind(name)
        return kind if kind in EMBEDDING_PROVIDERS else "dummy"
