"""``circuit_breaker = { failures = 5, within = "60s", open_for = "30s" }``: on an agent
(``[agents.NAME]``, with an optional ``fallback_agent``) and on an LLM provider
(``[providers.NAME]``, or ``[llm]`` for the provider it names). What a breaker does at run
time, and where its state lives: activities/breaker.py and docs/agents.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from agentflow.config._base import AgentName, Count, StrictModel
from agentflow.config.cache import Duration


class BreakerConfig(StrictModel):
    """A circuit breaker: ``failures`` failed calls ``within`` a window open it; while open
    (``open_for``), calls fail fast; then one trial call goes through (half-open): success
    closes it, failure opens it again."""

    # How many failed calls open the breaker ...
    failures: Count = 5
    # ... within this window (a duration: "60s", "1m30s", or seconds).
    within: Duration = 60.0
    # How long it stays open before a trial call goes through (required).
    open_for: Duration


class AgentBreakerConfig(BreakerConfig):
    """``[agents.NAME] circuit_breaker``: the agent's breaker."""

    # While it is open, the call runs this agent (a handler agent of the flow) instead of
    # failing fast.
    fallback_agent: AgentName | None = None


class _Agent(Protocol):
    """What check_fallbacks reads of an agent's table (AgentConfig, which imports this)."""

    handler: str | None
    circuit_breaker: AgentBreakerConfig | None


def check_fallbacks(agents: Mapping[str, _Agent]) -> None:
    """ValueError naming the agent whose ``fallback_agent`` is no other handler agent."""
    for name, agent in agents.items():
        breaker = agent.circuit_breaker
        fallback = breaker.fallback_agent if breaker else None
        if fallback is None:
            continue
        where = f"agents.{name}.circuit_breaker.fallback_agent"
        if fallback not in agents:
            raise ValueError(f"{where}: {fallback!r} names no agent; agents: {', '.join(agents)}")
        if fallback == name or agents[fallback].handler is None:
            raise ValueError(
                f"{where}: {fallback!r} must be another agent with a handler (it runs in the "
                "breaker's agent's place, inside its activity)"
            )
