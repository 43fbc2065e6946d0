"""Mermaid diagrams of a flow: what the config declares, the path a run actually took, and a
session's latest events (one box each: its agent steps and how it ended). An agent that is a
whole flow is a subgraph in each: the configured child flow, or the path its child run took.

Only plain ``flowchart`` syntax (node ids sanitised, every label quoted), so the output
renders in GitHub markdown inside a ```mermaid block. The builder is agentflow/graph_mermaid.py,
run graphs agentflow/graph_run.py, session graphs agentflow/graph_session.py.
"""

from __future__ import annotations

from agentflow.config import FlowConfig
from agentflow.inspect.graph.mermaid import DONE, START, Mermaid, quote
from agentflow.inspect.graph.run import run_graph
from agentflow.inspect.graph.session import SESSION_EVENTS, session_graph
from agentflow.inspect.trace.read import TraceEntry

__all__ = [
    "SESSION_EVENTS",
    "Mermaid",
    "config_graph",
    "quote",
    "run_graph",
    "session_graph",
    "trace_graph",
]


def config_graph(config: FlowConfig) -> str:
    """The flow as configured: its mode's shape, agents, hand-offs (route mode), and the
    topics agents subscribe to. An agent that is a whole flow is a subgraph of that flow."""
    chart = Mermaid()
    _flow_shape(chart, config, "")
    return chart.render()


def _flow_shape(chart: Mermaid, config: FlowConfig, prefix: str) -> None:
    """Draw ``config`` with node keys starting with ``prefix`` (a nested flow's agent path)."""
    orch = config.orchestration
    start, done = prefix + START, prefix + DONE

    def key(name: str) -> str:
        return prefix + name

    chart.node(start, f"event → {config.name} ({config.mode})", "stadium")
    for name in config.enabled_agents():
        role = config.agents[name].role
        label = f"{name}\n{role}" if role else name
        if name in config.nested:
            child = config.nested[name]
            title = f"{label}\nflow {child.name} ({child.mode})"
            with chart.subgraph(key(name), title):
                _flow_shape(chart, child, f"{key(name)}/")
        else:
            chart.node(key(name), label)
    chart.node(done, "result", "stadium")
    if config.mode in ("sequential", "collaborative", "mixed"):
        tail = start
        if orch.collaborative_agents:
            chart.node(key("merge"), "merge outputs", "hexagon")
            for name in orch.collaborative_agents:
                chart.edge(start, key(name))
                chart.edge(key(name), key("merge"))
            tail = key("merge")
        chart.chain([tail, *map(key, orch.sequential_agents), done])
    elif config.mode == "loop":
        agent = key(orch.loop_agent or "")
        chart.edge(start, agent)
        chart.edge(agent, agent, f"repeat (max {orch.max_iterations})")
        chart.edge(agent, done, "loop_complete")
    else:  # route: agents hand off through meta.route, so any agent may follow any other
        entry = orch.entry_agent
        chart.edge(start, key(entry or "route_target"), "entry" if entry else "")
        if not entry:
            chart.node(key("route_target"), "event.target_agent\n(else the first enabled agent)",
                       "rhombus")  # fmt: skip
            for name in config.enabled_agents():
                chart.edge(key("route_target"), key(name), dotted=True)
        chart.node(key("router"), "meta.route", "rhombus")
        for name in config.enabled_agents():
            chart.edge(key(name), key("router"))
            chart.edge(key("router"), key(name), "hand-off", dotted=True)
        chart.edge(key("router"), done, "no route")
    for topic in config.topics():  # any agent may publish; subscribers react on the side
        chart.node(key(f"topic:{topic}"), f"topic: {topic}", "flag")
        for name in config.subscribers(topic):
            chart.edge(key(f"topic:{topic}"), key(name), "subscribes", dotted=True)


def trace_graph(entries: list[TraceEntry], last: int = SESSION_EVENTS) -> str:
    """The graph of a traced workflow: a session's last events, or a run's path (a flow
    agent's child flow, its lines one level deeper, a subgraph of the agent's step)."""
    if any(entry.action == "emitted" for entry in entries):
        return session_graph(entries, last)
    return run_graph(entries)
