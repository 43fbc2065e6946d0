"""A run's or a session's trace, decoded from its Temporal history: the history *is* the
trace. ``read`` fetches and filters; the private modules decode one concern each."""

from agentflow.inspect.trace._entry import TraceEntry
from agentflow.inspect.trace.bus_path import event_graph, trace_event
from agentflow.inspect.trace.read import format_table, to_json, trace, trace_session

__all__ = [
    "TraceEntry",
    "event_graph",
    "format_table",
    "to_json",
    "trace",
    "trace_event",
    "trace_session",
]
