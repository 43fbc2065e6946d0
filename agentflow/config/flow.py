"""The flow's own tables: ``[agent_flow]``, ``[llm]``, ``[agents.*]``, ``[orchestration]``,
``[temporal]``, ``[telemetry]``, and ``FlowConfig``, the whole file."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from agentflow.config._base import (
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
    zero_means_default,
)
from agentflow.config.bus import BusConfig
from agentflow.config.events import ErrorRoutingConfig, HooksConfig, SessionsConfig
from agentflow.config.events import _hook_paths as check_import_paths
from agentflow.config.llm import AgentLLMConfig, LLMConfig, ProviderConfig
from agentflow.config.mcp import MCPConfig
from agentflow.config.runtime import (
    AgentMemoryConfig,
    LoggingConfig,
    RateLimitConfig,
    RetryPolicyConfig,
    RuntimeConfig,
)
from agentflow.config.security import PayloadsConfig, SecurityConfig
from agentflow.config.topics import (
    check_optional_patterns,
    check_ordered,
    check_patterns,
    matches_any,
)


class FlowMeta(_Strict):
    """``[agent_flow]``: what the flow is called."""

    name: str = "agentflow"
    version: str = "0.0.0"
    description: str = ""
    # AgenticGoKit: the default of [llm] provider (a kind, or a [providers] name).
    provider: str = ""

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
    # Descriptive only (shown, never used to pick agents), as in AgenticGoKit's files.
    capabilities: list[str] = Field(default_factory=list)
    handler: str | None = None
    # 0 (AgenticGoKit's "unset"): the default, [runtime] timeout_seconds or 60.
    timeout_seconds: Seconds = 60.0
    retry_attempts: Retries | None = None
    retry: RetrySettings | None = None
    # AgenticGoKit's retry settings (maximum_attempts = 1 + max_retries; delays in ms).
    retry_policy: RetryPolicyConfig | None = None
    # At most this many starts per second across every worker (a task queue of its own).
    rate_limit: RateLimitConfig | None = None
    # LLM agents. auto_llm (AgenticGoKit): true = the agent asks the LLM (no handler);
    # false = it must have a handler; unset = an LLM agent exactly when it has no handler.
    auto_llm: bool | None = None
    llm: AgentLLMConfig | None = None
    # Python tools the LLM may call ("package.module:function", typed by signature) ...
    tools: list[str] = Field(default_factory=list)
    # ... and the MCP servers ([[mcp.servers]] names) whose tools it may call; None: all.
    mcp_servers: list[str] | None = None
    # The reply as validated data: a JSON Schema (table or JSON text) or "module:Model".
    output_schema: dict[str, Any] | str | None = None

    _zero = model_validator(mode="before")(zero_means_default("timeout_seconds"))
    _tools = field_validator("tools")(check_import_paths)
    # Topics (or NATS-style patterns: "research.*", "user.>") this agent reacts to, whoever
    # publishes them: agents of this flow (within the run) or of any flow (through the bus).
    subscribes: list[str] = Field(default_factory=list)
    # Topics (or patterns) this agent may publish to; None: any. Others are dead-lettered.
    publishes: list[str] | None = None
    # Bus deliveries with the same key reach this agent in publish order (agentflow/bus.py).
    ordered: bool = False
    # A person approves the agent before it runs, or its output before that flows on (README
    # "Approvals"). The timeout (None: the run's own) applies to handler-asked approvals too.
    approval: Literal["before", "after"] | None = None
    approval_timeout_seconds: Seconds | None = None
    on_timeout: Literal["reject", "approve", "fail"] | None = None  # None: "reject"

    @model_validator(mode="after")
    def _on_timeout_needs_a_timeout(self) -> AgentConfig:
        if self.on_timeout is not None and self.approval_timeout_seconds is None:
            raise ValueError(
                "on_timeout needs approval_timeout_seconds (how long a person has to decide)"
            )
        return self

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
    # A whole other flow file (relative to this file) that runs as a child workflow in the
    # agent's place; agentflow/config/nested.py loads it into FlowConfig.nested.
    flow: str | None = None

    @model_validator(mode="after")
    def _flow_is_the_whole_agent(self) -> AgentConfig:
        if self.flow is not None:
            clash = [key for key in ("handler", "system_prompt", "auto_llm") if getattr(self, key)]
            if self.local:
                clash.append("local")
            if clash:
                raise ValueError(
                    f"flow cannot be combined with {', '.join(clash)}: an agent is a handler, "
                    'an LLM agent (system_prompt) or a whole flow (flow = "path.toml")'
                )
            if not self.flow.strip():
                raise ValueError('flow: must be a path to a flow file (e.g. "flows/x.toml")')
        return self


class OrchestrationConfig(_Strict):
    """``[orchestration]``: which mode runs which agents, and the limits of a run."""

    mode: ModeName
    # 0 (AgenticGoKit's scaffold writes it when unset): the default.
    timeout_seconds: Seconds = 300.0
    max_iterations: Count = 10
    # A run whose LLM calls use more tokens (input + output) than this fails (None: no cap).
    max_tokens_per_run: Count | None = None

    _zero = model_validator(mode="before")(zero_means_default("timeout_seconds"))
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
    # How many levels of flows inside flows (agents with ``flow = ...``) this file may hold.
    max_flow_depth: Count = 5
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
    # LLM providers and MCP servers travel in the snapshot (secrets only as ${VAR}).
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    mcp: MCPConfig = Field(default_factory=MCPConfig)
    # Worker settings ([runtime], [logging]); [agent_memory] is only accepted when disabled.
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, exclude=True)
    logging: LoggingConfig = Field(default_factory=LoggingConfig, exclude=True)
    agent_memory: AgentMemoryConfig | None = Field(None, exclude=True)
    # The flow file of each agent with ``flow = ...``, as loaded when this config was (set by
    # the loader, never written in TOML): it travels in the snapshot, so a run is pinned to it.
    nested: dict[str, FlowConfig] = Field(default_factory=dict)

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
