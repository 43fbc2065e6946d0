"""``[agents.NAME]``: one agent (a handler, an LLM agent or a whole flow), and
``RetrySettings``, how Temporal retries a failed agent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentflow.config._base import (
    Factor,
    Retries,
    Seconds,
    StrictModel,
    check_import_paths,
    zero_means_default,
)
from agentflow.config.batch import BatchConfig, check_batch
from agentflow.config.breaker import AgentBreakerConfig
from agentflow.config.cache import CacheConfig
from agentflow.config.llm import AgentLLMConfig
from agentflow.config.runtime import RateLimitConfig, RetryPolicyConfig
from agentflow.config.topics import (
    Subscription,
    check_accepts_from,
    check_optional_patterns,
    check_ordered,
    check_subscriptions,
    subscription_entries,
)


class RetrySettings(StrictModel):
    """How Temporal retries a failed agent (``[orchestration.retry]``, ``[agents.X.retry]``)."""

    initial_interval_seconds: Seconds = 1.0
    backoff_coefficient: Factor = 2.0
    maximum_interval_seconds: Seconds = 30.0
    # Exception class names (e.g. "ValueError") that fail the agent at once, like FatalError.
    non_retryable_errors: list[str] = Field(default_factory=list)


class AgentConfig(StrictModel):
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
    # AgenticGoKit's switch of an agent's tools (its tutorials' tools_enabled; its newer
    # agents' [tools] enabled): false is mcp_servers = [] with no tools (the agent calls none);
    # true is the default. Read into mcp_servers, so it stays out of the snapshot.
    tools_enabled: bool | None = Field(None, exclude=True)
    # The reply as validated data: a JSON Schema (table or JSON text) or "module:Model".
    output_schema: dict[str, Any] | str | None = None
    # The model's reply streams to the run's live stream as it arrives; false: it is asked
    # for whole (no tokens for watchers, the same result), cheaper when nobody reads them.
    stream: bool = True
    # AgenticGoKit's agent memory: before it runs, the agent recalls what the flow's
    # [agent_memory] holds for its input (the knowledge base and its session's earlier turns);
    # after, its turn is remembered in the session. No [agent_memory]: its defaults (sqlite);
    # refused when [agent_memory] enabled = false, and beside flow.
    memory_enabled: bool = False
    # Its results cached for ttl (agentflow/client/result_cache.py): a hit does not run it.
    cache: CacheConfig | None = None
    # Fails fast (or runs fallback_agent) while too many of its calls failed
    # (activities/breaker.py).
    circuit_breaker: AgentBreakerConfig | None = None
    # Undoes what the agent did when its sequential or mixed run fails for good after it
    # completed: "module:function", called as fn(event, state) with the state the agent
    # produced (docs/agents.md "Compensation").
    compensate: str | None = None

    _zero = model_validator(mode="before")(zero_means_default("timeout_seconds"))
    _tools = field_validator("tools")(check_import_paths)

    @field_validator("compensate")
    @classmethod
    def _compensate_path(cls, path: str | None) -> str | None:
        return None if path is None else check_import_paths([path])[0]

    @model_validator(mode="after")
    def _tools_switch(self) -> AgentConfig:
        if self.tools_enabled is False:
            pairs = (("mcp_servers", self.mcp_servers), ("tools", self.tools))
            given = [f"{key} = {value!r}" for key, value in pairs if value]
            if given:
                raise ValueError(
                    f"tools_enabled = false, but {' and '.join(given)} gives the agent tools; "
                    "keep one of them"
                )
            self.mcp_servers = []
        elif self.tools_enabled and self.mcp_servers == [] and not self.tools:
            raise ValueError(
                "tools_enabled = true, but mcp_servers = [] and no tools leave the agent none; "
                "remove mcp_servers = [] (every enabled [[mcp.servers]]) or name servers in it"
            )
        return self

    # Topics (or NATS-style patterns: "research.*", "user.>") this agent reacts to, whoever
    # publishes them: agents of this flow (within the run) or of any flow (through the bus).
    subscribes: list[Subscription] = Field(default_factory=list)
    # Topics (or patterns) this agent may publish to; None: any. Others are dead-lettered.
    publishes: list[str] | None = None
    # Bus deliveries with the same key reach this agent in publish order (the bus's sessions:
    # agentflow/models/bus.py).
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

    # The publishers whose events it takes ("FLOW.AGENT", "client *"; globs); None: anyone.
    # Others are dead-lettered by the bus ("publisher refused").
    accepts_from: list[str] | None = None
    _accepts = field_validator("accepts_from")(check_accepts_from)
    _entries = field_validator("subscribes", mode="before")(subscription_entries)
    _topics = field_validator("subscribes")(check_subscriptions)

    _publishes = field_validator("publishes")(check_optional_patterns)

    @model_validator(mode="after")
    def _ordered_needs_topics(self) -> AgentConfig:
        check_ordered(self.ordered, self.subscribes, "the agent")
        return self

    # Bus deliveries gathered into batches: one call per batch (docs/bus.md "Batched
    # subscribers"); None: one call per delivery.
    batch: BatchConfig | None = None

    @model_validator(mode="after")
    def _batch_needs_topics(self) -> AgentConfig:
        check_batch(self.batch, list(self.subscribes))
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
            keys = ("handler", "system_prompt", "auto_llm", "memory_enabled", "cache",
                    "circuit_breaker")  # fmt: skip
            clash = [key for key in keys if getattr(self, key)]
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
