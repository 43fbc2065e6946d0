"""Load-time checks of a flow's CEL expressions (``when``), of the agents its routes name and
of its subscribers' ``accepts_from``: each problem one line naming the key path."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from agentflow.config._base import did_you_mean
from agentflow.config.expressions import expression_problem
from agentflow.config.flow import FlowConfig
from agentflow.config.topics import Subscription, TopicFilter


def expression_problems(config: FlowConfig) -> Iterable[str]:
    """Every ``when`` that does not compile or uses an unknown variable; every route to an
    agent that is not defined or not enabled."""
    for name, agent in config.agents.items():
        yield from _subscription_problems(f"agents.{name}.subscribes", agent.subscribes)
    yield from _subscription_problems("bus.subscribes", config.bus.subscribes)
    for name, pattern in config.patterns.items():  # [patterns.NAME] key: a CEL expression
        if problem := expression_problem(pattern.key):
            yield f"patterns.{name}.key: {problem}"
    for name, agent in config.agents.items():
        yield from _accepts_problems(config, f"agents.{name}", agent.accepts_from, agent.subscribes)
    yield from _accepts_problems(config, "bus", config.bus.accepts_from, config.bus.subscribes)
    for index, route in enumerate(config.orchestration.routes):
        key = f"orchestration.routes[{index}]"
        if route.when is not None and (problem := expression_problem(route.when)):
            yield f"{key}.when: {problem}"
        if route.agent not in config.agents:
            defined = ", ".join(config.agents) or "none"
            yield (
                f"{key}.agent: agent {route.agent!r} is not defined"
                f"{did_you_mean(route.agent, config.agents)}; defined agents: {defined}"
            )
        elif not config.agents[route.agent].enabled:
            yield f"{key}.agent: agent {route.agent!r} has enabled = false; enable it or remove it"


def _subscription_problems(key: str, subscriptions: Sequence[Subscription]) -> Iterable[str]:
    for index, sub in enumerate(subscriptions):
        if isinstance(sub, TopicFilter) and (problem := expression_problem(sub.when)):
            yield f"{key}[{index}].when: {problem}"


def _accepts_problems(
    config: FlowConfig, key: str, accepts_from: list[str] | None, subscribes: Sequence[object]
) -> Iterable[str]:
    """``accepts_from`` needs subscriptions, and an entry of this flow names one of its agents
    (other flows' agents live in other files: the bus checks those when events arrive)."""
    if accepts_from is None:
        return
    if not subscribes:
        yield f"{key}.accepts_from: it refuses bus deliveries, and {key} subscribes to nothing"
    for index, entry in enumerate(accepts_from):
        flow, _, agent = entry.partition(".")
        if (
            flow == config.name
            and not any(ch in agent for ch in "*?[")
            and (agent not in config.agents)
        ):
            agents = ", ".join(config.agents) or "none"
            yield (
                f"{key}.accepts_from[{index}]: {entry!r} names no agent of flow {config.name!r}"
                f"{did_you_mean(agent, config.agents)}; its agents: {agents}"
            )
