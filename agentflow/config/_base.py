"""What every config table shares: the strict base model, names and limits, did-you-mean."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agentflow.limits import (
    INT32_MAX,
    MAX_DURATION_SECONDS,
    MAX_ID_BYTES,
    MIN_DURATION_SECONDS,
)

MODES = ("route", "sequential", "collaborative", "loop", "mixed")
MODE_ALIASES = {"collaborate": "collaborative", "parallel": "collaborative"}
# AgenticGoKit's modes that agentflow has no equivalent of -> what it lacks.
AGK_MODES_UNSUPPORTED = {
    "custom": "custom orchestrators (AgenticGoKit's orchestrator_class) are not supported",
    "dag": "a graph of agents (AgenticGoKit's dag workflow) is not a mode; mixed runs "
    "collaborative_agents then sequential_agents, and an agent may be a whole flow (flow = ...)",
}
# The provider kinds (agentflow/config/llm.py PROVIDER_KINDS; here for messages and old imports).
LLM_PROVIDERS = ("anthropic", "azure", "mock", "ollama", "openai", "openai-compatible")
DEFAULT_CONFIG_FILE = "agentflow.toml"
# The hook points (AgenticGoKit's HookPoint names are accepted as aliases).
HOOK_POINTS = ("before_event_handling", "after_event_handling", "before_agent_run",
               "after_agent_run", "agent_error", "all")  # fmt: skip
# How an agent failed, for [error_routing] category_handlers (see error_kind in workflows).
ERROR_KINDS = ("validation", "timeout", "fatal", "rejected", "default")  # rejected: approvals
# AgenticGoKit's error codes for the same kinds.
ERROR_KIND_ALIASES = {"VALIDATION_ERROR": "validation", "TIMEOUT_ERROR": "timeout"}
# Temporal keeps ids and Keyword search attribute values short (workflow ids: 1,000 bytes;
# a Keyword value: 2,048 bytes). Flow names go into both, with a session id or event id.
MAX_FLOW_NAME_BYTES = 200
# Agent names go into activity ids (1,000 bytes) after an event and step number.
MAX_AGENT_NAME_BYTES = 200

ModeName = Literal["route", "sequential", "collaborative", "loop", "mixed"]


class StrictModel(BaseModel):
    """The base of every config table: unknown keys and wrong types are errors."""

    # strict: `enabled = "yes"` and `max_iterations = true` are errors, not coerced values;
    # allow_inf_nan: TOML's nan, inf and 1e400 are not numbers Temporal can take.
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, strict=True, allow_inf_nan=False
    )


def _duration(seconds: float) -> float:
    # Worded like pydantic's own bound messages, which the other numbers get.
    if not seconds > 0:
        raise ValueError("Input should be greater than 0 (seconds)")
    if seconds < MIN_DURATION_SECONDS:
        raise ValueError(
            f"Input should be at least {MIN_DURATION_SECONDS} seconds (1 ms): shorter Temporal "
            "timeouts and intervals round to none"
        )
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(
            f"Input should be at most {MAX_DURATION_SECONDS} seconds (10 years); Temporal "
            "keeps durations as 64-bit nanoseconds"
        )
    return seconds


def _fraction(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(
            "must be between 0 and 1 (the fraction of collaborative agents that may fail)"
        )
    return value


def _bytes_at_most(limit: int, why: str) -> AfterValidator:
    def check(text: str) -> str:
        size = len(text.encode("utf-8", "surrogatepass"))
        if not text.strip():
            raise ValueError("must not be empty")
        if size > limit:
            raise ValueError(f"is {size} bytes; at most {limit} bytes ({why})")
        return text

    return AfterValidator(check)


# Every number in the config is one of these (or carries both bounds itself): a value that
# Temporal cannot take must fail at load time, never inside a run (tests/test_hostile_input.py
# walks every field to keep it so).
Seconds = Annotated[float, AfterValidator(_duration)]
Fraction = Annotated[float, AfterValidator(_fraction)]
# A count (iterations, concurrency, tokens): positive, and an int32 where Temporal keeps it.
Count = Annotated[int, Field(gt=0, le=INT32_MAX)]
# Retries after the first try: Temporal's maximum_attempts (an int32) is 1 + this.
Retries = Annotated[int, Field(ge=0, le=INT32_MAX - 1)]
# A multiplier (retry backoff): finite, and small enough that intervals stay durations.
Factor = Annotated[float, Field(ge=1, le=100)]
# The validators that bound a number by themselves (the guard test accepts these).
BOUNDING_VALIDATORS = (_duration, _fraction)

AgentName = Annotated[
    str, _bytes_at_most(MAX_AGENT_NAME_BYTES, f"it goes into Temporal activity ids, at most "
                        f"{MAX_ID_BYTES} bytes")
]  # fmt: skip
TaskQueueName = Annotated[
    str, _bytes_at_most(MAX_ID_BYTES, "Temporal's limit for task queue names")
]


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a close match of ``value`` among ``choices``, else ``""``."""
    # A typo keeps most of the word: "sequental_agents", "olama". A hint from a weaker match
    # ("memory_enabled" -> "enabled", "agents" -> "local_agents") names an unrelated key.
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_import_paths(paths: list[str]) -> list[str]:
    """A field validator: each path looks like ``package.module:function`` (hooks, tools)."""
    for path in paths:
        module, sep, attr = path.partition(":")
        if not (sep and module.strip() and attr.strip()):
            raise ValueError(f"{path!r} must look like 'package.module:function'")
    return paths


def zero_means_default(*keys: str) -> Callable[[Any], Any]:
    """A before-validator: ``key = 0`` is left out, so the key takes its default.

    AgenticGoKit's scaffold writes ``timeout_seconds = 0`` for "not set" (Go's zero value).
    """

    def unset(key: str, value: Any) -> bool:
        # 0, or 0.0 for a duration; 0.0 in a count is a wrong type, which the field refuses.
        return (
            key in keys
            and value == 0
            and (type(value) is int or (type(value) is float and key.endswith("_seconds")))
        )

    def drop_zeros(data: Any) -> Any:
        if isinstance(data, dict) and any(unset(k, v) for k, v in data.items()):
            return {k: v for k, v in data.items() if not unset(k, v)}
        return data

    return drop_zeros


_BY_KIND = (
    "route failures by kind with category_handlers = { validation = ..., timeout = ..., "
    "fatal = ... }"
)
# AgenticGoKit keys agentflow does not support (yet), by table ("*" stands for any agent
# name) -> what to do instead. The loader says so rather than "unknown key".
AGK_UNSUPPORTED: dict[str, dict[str, str]] = {
    "error_routing": {
        "max_retries": "retries belong to the agent: agents.NAME.retry_policy, or "
        "[orchestration] retry_attempts for every agent",
        "retry_delay_ms": "set agents.NAME.retry_policy.base_delay_ms, or "
        "[orchestration.retry] initial_interval_seconds",
        "retry": "set agents.NAME.retry_policy, or [orchestration.retry] for every agent",
        "circuit_breaker": "agents are retried by Temporal (retry_policy), then routed to "
        "error_handler / category_handlers; there is no circuit breaker",
        "severity_handlers": "route failures by kind with category_handlers",
        "enable_circuit_breaker": "there is no circuit breaker; failed agents are retried "
        "(retry_policy), then routed to error_handler / category_handlers",
        "validation_errors": _BY_KIND,
        "timeout_errors": _BY_KIND,
        "critical_errors": _BY_KIND,
        "default_error_handler": "the agent of every other failure is error_handler",
    },
    "agents.*": {
        "metadata": "keep descriptive text in description",
        # Keys of AgenticGoKit's docs that its Go code does not read either.
        "temperature": "an agent's temperature is agents.NAME.llm.temperature",
        "error_recovery": "a failed agent is retried (retry_policy), then its failure is routed "
        "by [error_routing]; there is no recovery mode",
        "max_retries": "write agents.NAME.retry_policy.max_retries (or retry_attempts)",
    },
    "orchestration": {
        "sequential": "there are no per-mode tables: a sequential run passes each agent's state "
        "to the next and stops at an agent that still fails after its retries; an agent's "
        "timeout is agents.NAME.timeout_seconds ([runtime] timeout_seconds for all)",
        "collaborative": "consensus, voting and discussion rounds are not supported: "
        "collaborative agents each run once on the same state and their changes are merged",
        "parallel": "there are no per-mode tables: set max_concurrency and timeout_seconds in "
        "[orchestration]; outputs are merged key by key (a later agent's write wins), there is "
        "no merge_strategy",
        "loop": "there are no per-mode tables: set loop_agent and max_iterations in "
        "[orchestration]",
        "mixed": "there are no per-mode tables: set collaborative_agents and sequential_agents "
        "in [orchestration]",
        "custom": AGK_MODES_UNSUPPORTED["custom"],
        "orchestrator_class": AGK_MODES_UNSUPPORTED["custom"],
        "fallback_strategy": "a run stops at an agent that still fails after its retries; "
        "route the failure to an agent with [error_routing] error_handler",
        "fallback_agent": "route failed agents to an agent with [error_routing] error_handler",
        "routing_rules": "routing by patterns in the event's text is not supported: route mode "
        "sends each event to its target (or entry_agent), then to the agent each one names in "
        "meta['route']",
        "default_agent": "there are no routing rules to fall back from; entry_agent is the "
        "agent of events that name no target",
        "parallel_groups": "stages of parallel groups are not supported: mixed mode runs one "
        "group (collaborative_agents) and then a sequence (sequential_agents); an agent may be "
        "a whole flow (flow = ...) for more stages",
        "max_concurrent_agents": "AgenticGoKit reads it from [runtime] (max_concurrent_agents); "
        "collaborative agents' fan-out is [orchestration] max_concurrency",
    },
    "mcp": {
        "timeout_seconds": "AgenticGoKit's [mcp] has connection_timeout_ms and "
        "discovery_timeout_ms",
        "cache_enabled": "set [mcp.cache] enabled",
        "cache_ttl": "set [mcp.cache] default_ttl_ms",
    },
    # Top-level tables.
    "": {
        "monitoring": "metrics and traces are OpenTelemetry's: set [telemetry] exporter",
        "metrics": "metrics and traces are OpenTelemetry's: set [telemetry] exporter",
        "debug": 'set [logging] level = "debug"',
        "resources": "agentflow sets no memory or CPU limits; limit concurrent agents with "
        "[runtime] max_concurrent_agents",
        "retry_policy": "set agents.NAME.retry_policy, or [orchestration.retry] for every agent",
        "rate_limit": "set agents.NAME.rate_limit",
        "visualization": "draw the flow with agentflow graph",
        "name": "the flow's name is [agent_flow] name",
        "version": "the flow's version is [agent_flow] version",
        "description": "the flow's description is [agent_flow] description",
        "log_level": "set [logging] level",
        "provider": "the LLM is [llm] provider and model; a provider's own settings go in "
        "[providers.NAME]",
    },
    "logging": {
        "max_age": "log rotation by age is not supported; use max_size and max_backups",
        "compress": "compressed log rotation is not supported; use max_size and max_backups",
    },
}


def agk_unsupported(loc: tuple[int | str, ...]) -> str | None:
    """What to use instead of the AgenticGoKit key at ``loc``, None if it is not one."""
    if not loc:
        return None
    *table, key = (str(part) for part in loc)
    if table[:1] == ["agents"] and len(table) == 2:
        table = ["agents", "*"]
    return AGK_UNSUPPORTED.get(".".join(table), {}).get(key)
