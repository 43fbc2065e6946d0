"""The flow's own tables: ``[agent_flow]``, ``[llm]``, ``[agents.*]``, ``[orchestration]``,
``[temporal]``, ``[telemetry]``, and ``FlowConfig``, the whole file."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from agentflow.config._base import (
    LLM_PROVIDERS,
    MAX_FLOW_NAME_BYTES,
    MODE_ALIASES,
    MODES,
    ModeName,
    _did_you_mean,
    _Strict,
)
from agentflow.config.bus import BusConfig
from agentflow.config.events import ErrorRoutingConfig, HooksConfig, SessionsConfig
from agentflow.config.security import PayloadsConfig, SecurityConfig
from agentflow.topics import check_patterns, matches_any


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
    max_tokens: int | None = Field(None, gt=0)
    base_url: str | None = None
    # The *name* of the environment variable holding the key: secrets never enter the config
    # snapshot, which is recorded in workflow history.
    api_key_env: str | None = None
    timeout_seconds: float = Field(120.0, gt=0)

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

    initial_interval_seconds: float = Field(1.0, gt=0)
    backoff_coefficient: float = Field(2.0, ge=1)
    maximum_interval_seconds: float = Field(30.0, gt=0)
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
    timeout_seconds: float = Field(60.0, gt=0)
    retry_attempts: int | None = Field(None, ge=0)
    retry: RetrySettings | None = None
    # Topics (or NATS-style patterns: "research.*", "user.>") this agent reacts to, whoever
    # publishes them: agents of this flow (within the run) or of any flow (through the bus).
    subscribes: list[str] = Field(default_factory=list)
    # Topics (or patterns) this agent may publish to; None: any. Others are dead-lettered.
    publishes: list[str] | None = None
    # Bus deliveries with the same key reach this agent in publish order (agentflow/bus.py).
    ordered: bool = False

    _topics = field_validator("subscribes")(check_patterns)

    @field_validator("publishes")
    @classmethod
    def _publish_patterns(cls, patterns: list[str] | None) -> list[str] | None:
        return None if patterns is None else check_patterns(patterns)

    @model_validator(mode="after")
    def _ordered_needs_topics(self) -> AgentConfig:
        if self.ordered and not self.subscribes:
            raise ValueError("ordered = true orders bus deliveries: give the agent subscribes")
        return self

    # Run as a Temporal local activity (no server round trip per step); None: the flow's
    # ``[orchestration] local_agents`` default. See the README's Performance section for the
    # crash window: local steps since the last workflow task completion may run again.
    local: bool | None = None


class OrchestrationConfig(_Strict):
    """``[orchestration]``: which mode runs which agents, and the limits of a run."""

    mode: ModeName
    timeout_seconds: float = Field(300.0, gt=0)
    max_iterations: int = Field(10, gt=0)
    retry_attempts: int = Field(3, ge=0)
    collaborative_agents: list[str] = Field(default_factory=list)
    sequential_agents: list[str] = Field(default_factory=list)
    loop_agent: str | None = None
    entry_agent: str | None = None
    failure_threshold: float = 0.0
    max_concurrency: int = Field(10, gt=0)
    max_hops: int = Field(10, gt=0)
    # Default of every agent's ``local`` option.
    local_agents: bool = False
    # Temporal's workflow task timeout: how soon a crashed worker's flow moves on, and (at
    # 80 %) how often a chain of local agents gets its results recorded.
    workflow_task_timeout_seconds: float = Field(10.0, gt=0, le=120)
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

    @field_validator("failure_threshold")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0 <= value <= 1:
            raise ValueError(
                "must be between 0 and 1 (the fraction of collaborative agents that may fail)"
            )
        return value


class TemporalConfig(_Strict):
    """``[temporal]``: overrides of Temporal's standard client settings (TEMPORAL_ADDRESS, …)."""

    address: str | None = None
    namespace: str | None = None
    task_queue: str = "agentflow"
    profile: str | None = None
    tls: bool | None = None


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
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
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
