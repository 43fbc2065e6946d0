"""Reading what Temporal recorded: the trace of a run or session (``trace``), its Mermaid
graph (``graph``), and whether today's workflow code still replays runs in flight
(``replay``)."""

from agentflow.inspect.graph import config_graph, run_graph, session_graph, trace_graph
from agentflow.inspect.replay import ReplayReport, replay_runs
from agentflow.inspect.trace import TraceEntry, format_table, to_json, trace, trace_event

__all__ = [
    "ReplayReport",
    "TraceEntry",
    "config_graph",
    "format_table",
    "replay_runs",
    "run_graph",
    "session_graph",
    "to_json",
    "trace",
    "trace_event",
    "trace_graph",
]
