"""The flow's own tables: ``[agent_flow]``, ``[llm]``, ``[agents.*]``, ``[orchestration]``,
``[temporal]``, ``[telemetry]``, and ``FlowConfig``, the whole file."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from agentflow.config._base import (
    LLM_PROVIDERS,
    MAX_FLOW_NAME_BYTES,
    MODE_ALIASES,
    MODES,
    AgentName,
    Count,
    Factor,
    Fraction,
    ModeName,
    Retries,
    Seconds,
    TaskQueueName,
    _did_you_mean,
    _Strict,
)
from agentflow.config.bus import BusConfig
from agentflow.config.events import ErrorRoutingConfig, HooksConfig, SessionsConfig
from agentflow.config.security import PayloadsConfig, SecurityConfig
from agentflow.topics import check_optional_patterns, check_ordered, check_patterns, matches_any


class FlowMeta(_Strict):
    """``[agent_flow]``: what the flow is called."""

    name: str = "agentflow"
    version: str = "0.0.0"
    description: str = ""

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


class LLMConfig(_Strict):
    """``[llm]``: the model used by agents that have a ``system_prompt`` and no ``handler``."""

    provider: str = Field("", validation_alias=AliasChoices("provider", "type"))
    model: str = ""
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: Count | None = None
    base_url: str | None = None
    # The *name* of the environment variable holding the key: secrets never enter the config
    # snapshot, which is recorded in workflow history.
    api_key_env: str | None = None
    timeout_seconds: Seconds = 120.0

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value and value not in LLM_PROVIDERS:
            raise ValueError(
                f"unknown provider {value!r}{_did_you_mean(value, LLM_PROVIDERS)}; "
                f"allowed: {', '.join(LLM_PROVIDERS)}"
            )
        return value


class RetrySettings(_Strict):
    """How Temporal retries a failed agent (``[orchestration.retry]``, ``[agents.X.retry]``)."""

    initial_interval_seconds: Seconds = 1.0
    backoff_coefficient: Factor = 2.0
    maximum_interval_seconds: Seconds = 30.0
    # Exception class names (e.g. "ValueError") that fail the agent at once, like FatalError.
    non_retryable_errors: list[str] = Field(default_factory=list)


class AgentConfig(_Strict):
    """``[agents.NAME]``: one agent."""

    role: str = ""
    description: str = ""
    system_prompt: str = ""
    enabled: bool = True
    capabilities: list[str] = Field(default_factory=list)
    handler: str | None = None
    timeout_seconds: Seconds = 60.0
    retry_attempts: Retries | None = None
    retry: RetrySettings | None = None
    # Topics (or NATS-style patterns: "research.*", "user.>") this agent reacts to, whoever
    # publishes them: agents of this flow (within the run) or of any flow (through the bus).
    subscribes: list[str] = Field(default_factory=list)
    # Topics (or patterns) this agent may publish to; None: any. Others are dead-lettered.
    publishes: list[str] | None = None
    # Bus deliveries with the same key reach this agent in publish order (agentflow/bus.py).
    ordered: bool = False

    _topics = field_validator("subscribes")(check_patterns)

    _publishes = field_validator("publishes")(check_optional_patterns)

    @model_validator(mode="after")
    def _ordered_needs_topics(self) -> AgentConfig:
        check_ordered(self.ordered, self.subscribes, "the agent")
        return self

    # Run as a Temporal local activity (no server round trip per step); None: the flow's
    # ``[orchestration] local_agents`` default. See the README's Performance section for the
    # crash window: local steps since the last workflow task completion may run again.
    local: bool | None = None


class OrchestrationConfig(_Strict):
    """``[orchestration]``: which mode runs which agents, and the limits of a run."""

    mode: ModeName
    timeout_seconds: Seconds = 300.0
    max_iterations: Count = 10
    retry_attempts: Retries = 3
    collaborative_agents: list[str] = Field(default_factory=list)
    sequential_agents: list[str] = Field(default_factory=list)
    loop_agent: str | None = None
    entry_agent: str | None = None
    failure_threshold: Fraction = 0.0
    max_concurrency: Count = 10
    max_hops: Count = 10
    # Default of every agent's ``local`` option.
    local_agents: bool = False
    # Temporal's workflow task timeout: how soon a crashed worker's flow moves on, and (at
    # 80 %) how often a chain of local agents gets its results recorded.
    workflow_task_timeout_seconds: Annotated[Seconds, Field(le=120)] = 10.0
    retry: RetrySettings = Field(default_factory=lambda: RetrySettings())

    @field_validator("mode", mode="before")
    @classmethod
    def _normalise_mode(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        value = MODE_ALIASES.get(value, value)
        if value not in MODES:
            allowed = ", ".join(MODES) + " (aliases: collaborate, parallel)"
            raise ValueError(
                f"unknown mode {value!r}{_did_you_mean(value, MODES + tuple(MODE_ALIASES))}; "
                f"allowed: {allowed}"
            )
        return value


class TemporalConfig(_Strict):
    """``[temporal]``: overrides of Temporal's standard client settings (TEMPORAL_ADDRESS, …)."""

    address: str | None = None
    namespace: str | None = None
    task_queue: TaskQueueName = "agentflow"
    profile: str | None = None
    tls: bool | None = None
    # Where run links point (the Temporal UI's base URL); unset: a dev server's UI, on the
    # gRPC port + 1000 (agentflow/temporal.py ui_url).
    ui_url: str | None = None

    @field_validator("ui_url")
    @classmethod
    def _web_address(cls, url: str | None) -> str | None:
        if url is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
            raise ValueError("must be the Temporal UI's http:// or https:// address")
        return url


class TelemetryConfig(_Strict):
    """``[telemetry]``: OpenTelemetry spans and metrics of flows and agents (off by default)."""

    exporter: Literal["none", "console", "otlp"] = "none"
    # OTLP/HTTP endpoint; unset means OTEL_EXPORTER_OTLP_ENDPOINT or http://localhost:4318.
    endpoint: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    service_name: str = "agentflow"


class FlowConfig(_Strict):
    """A whole agentflow.toml. A snapshot of it travels in every workflow input."""

    agent_flow: FlowMeta = Field(default_factory=FlowMeta)
    llm: LLMConfig | None = None
    orchestration: OrchestrationConfig
    agents: dict[AgentName, AgentConfig] = Field(default_factory=dict)
    hooks: HooksConfig = Field(default_factory=HooksConfig)
    error_routing: ErrorRoutingConfig = Field(default_factory=ErrorRoutingConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    bus: BusConfig = Field(default_factory=BusConfig)
    # Client/worker settings, not flow logic: excluded from the snapshot that travels in the
    # workflow input (and so from history), since telemetry headers may hold credentials.
    temporal: TemporalConfig = Field(default_factory=TemporalConfig, exclude=True)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig, exclude=True)
    # [security] (payload encryption) and [payloads] (external storage): off unless present.
    security: SecurityConfig = Field(default_factory=SecurityConfig, exclude=True)
    payloads: PayloadsConfig | None = Field(None, exclude=True)

    @property
    def name(self) -> str:
        return self.agent_flow.name

    @property
    def mode(self) -> ModeName:
        return self.orchestration.mode

    def enabled_agents(self) -> list[str]:
        return [name for name, agent in self.agents.items() if agent.enabled]

    def subscribers(self, topic: str) -> list[str]:
        """The enabled agents subscribed to ``topic``, in config order (disabled ones never
        receive)."""
        names = self.enabled_agents()
        return [name for name in names if matches_any(self.agents[name].subscribes, topic)]

    def topics(self) -> list[str]:
        """Every topic (or pattern) an enabled agent or the flow subscribes to, in order of
        first mention."""
        names = self.enabled_agents()
        agents = (t for name in names for t in self.agents[name].subscribes)
        return list(dict.fromkeys([*agents, *self.bus.subscribes]))

    def may_publish(self, agent: str | None, topic: str) -> bool:
        """Whether ``agent`` (None: a client of this file) may publish to ``topic``."""
        allowed = self.bus.publishes if agent is None else self.agents[agent].publishes
        return allowed is None or matches_any(allowed, topic)

    def max_attempts(self, agent: str) -> int:
        """Temporal's maximum_attempts for an agent: its first try plus ``retry_attempts``."""
        own = self.agents[agent].retry_attempts
        return 1 + (self.orchestration.retry_attempts if own is None else own)

    def is_local(self, agent: str) -> bool:
        """Whether ``agent`` runs as a local activity (its ``local``, else the flow default)."""
        own = self.agents[agent].local
        return self.orchestration.local_agents if own is None else own

    def retry_settings(self, agent: str) -> RetrySettings:
        return self.agents[agent].retry or self.orchestration.retry
