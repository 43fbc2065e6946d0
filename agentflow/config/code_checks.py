"""What a flow file leaves to code: the agents it names without a handler (declared when it
loads), the ones nothing registers (a worker does not start without them), and flows with no
agent to run until code registers some. Registering is agentflow/config/registered.py."""

from __future__ import annotations

from collections.abc import Iterable

from agentflow.config._base import did_you_mean
from agentflow.config.agent import AgentConfig
from agentflow.config.flow import FlowConfig
from agentflow.config.registered import code_handler, is_code


def unrunnable(config: FlowConfig) -> str | None:
    """Why no run of ``config`` has an agent to run (a route flow without agents, a
    collaborative flow that lists none), before code registers them; None when it has."""
    if config.mode == "route" and not config.enabled_agents():
        what = "route mode and no agent to route to"
    elif config.mode == "collaborative" and not config.orchestration.collaborative_agents:
        what = "collaborative mode and no agent listed or registered"
    else:
        return None
    return (
        f"flow {config.name!r}: {what}: register agents in code (runner.register_agent, or "
        "@agentflow.agent with --agents), or define them in the flow file"
    )


def declare_code_agents(config: FlowConfig, names: Iterable[str]) -> FlowConfig:
    """``config`` with ``names`` as agents that code must register: added when ``[agents]``
    lacks them, marked when their table has no handler (their settings stay)."""
    agents = dict(config.agents)
    for name in dict.fromkeys(names):
        spec = agents.get(name)
        if spec is None:
            agents[name] = AgentConfig(handler=code_handler(name))
        elif spec.handler is None and spec.flow is None and not spec.auto_llm:
            agents[name] = spec.model_copy(update={"handler": code_handler(name)})
    return config if agents == config.agents else config.model_copy(update={"agents": agents})


def unbound_agents(config: FlowConfig, registered: Iterable[str] = ()) -> list[str]:
    """The enabled agents that code must register and ``registered`` does not hold."""
    have = set(registered)
    return [
        name
        for name in config.enabled_agents()
        if is_code(config.agents[name].handler) and name not in have
    ]


def describe_unbound(config: FlowConfig, names: list[str]) -> str:
    """``'a', 'b' (did you mean 'c'?)``: the agents, with what may be a typo or a missing
    [llm] provider."""
    written = [name for name in config.agents if not is_code(config.agents[name].handler)]
    shown = []
    for name in names:
        spec = config.agents[name]
        hint = did_you_mean(name, written)
        if not hint and (spec.system_prompt or spec.llm is not None):
            hint = " (it has LLM settings, but no [llm] provider is configured)"
        shown.append(f"{name!r}{hint}")
    return ", ".join(shown)


def unbound_message(config: FlowConfig, names: list[str], source: str) -> str:
    """One line: which agents nothing registers, and how to register them."""
    which = "agent" if len(names) == 1 else "agents"
    return (
        f"{source}: no handler for {which} {describe_unbound(config, names)}: register "
        f"{'it' if len(names) == 1 else 'them'} in code (runner.register_agent, or "
        "@agentflow.agent in a module given with --agents or [agent_flow] agent_modules), "
        "or give each a handler (or an [llm] provider) in the flow file"
    )
