"""Starting and talking to flows from Python, one module per concept: ``runner`` (Runner,
FlowHandle), ``sessions`` (emit and sessions), ``dead_letters``, ``approvals``, ``bus``
(publish, register), ``connection`` (settings, data converter, UI links), ``visibility``
(listing runs) and ``codec``/``payloads`` (what the data converter adds). The CLI calls these
same functions."""

from agentflow.client.approvals import PendingApproval, decide, pending
from agentflow.client.bus import publish, register
from agentflow.client.connection import connect, connect_flow, data_converter, ui_url
from agentflow.client.dead_letters import list_letters, purge, read_letter, redrive
from agentflow.client.runner import FlowHandle, Runner
from agentflow.client.sessions import (
    EmitHandle,
    EventDeadLetteredError,
    close_session,
    emit,
    new_event,
    session_view,
)
from agentflow.client.visibility import list_runs

__all__ = [
    "EmitHandle",
    "EventDeadLetteredError",
    "FlowHandle",
    "PendingApproval",
    "Runner",
    "close_session",
    "connect",
    "connect_flow",
    "data_converter",
    "decide",
    "emit",
    "list_letters",
    "list_runs",
    "new_event",
    "pending",
    "publish",
    "purge",
    "read_letter",
    "redrive",
    "register",
    "session_view",
    "ui_url",
]
