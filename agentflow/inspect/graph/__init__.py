"""Mermaid pictures: a flow as its config declares it, the path a run took, a session's
latest events."""

from agentflow.inspect.graph.flow import config_graph, trace_graph
from agentflow.inspect.graph.run import run_graph
from agentflow.inspect.graph.session import session_graph

__all__ = ["config_graph", "run_graph", "session_graph", "trace_graph"]
