"""Handlers and a hook for the session trace tests (tests/test_trace_session.py)."""

from __future__ import annotations

from typing import Any

from agentflow import Event, FatalError, State
from agentflow.models.flow import CallbackArgs


def check(event: Event, state: State) -> dict[str, Any]:
    """Fails for good when the event's data asks it to (``"fail": true``)."""
    if state.data.get("fail"):
        raise FatalError("asked to fail")
    return {"checked": True}


def fixer(event: Event, state: State) -> dict[str, Any]:
    """The error handler: notes which agent failed, and how."""
    return {"fixed": state.data["failed_agent"], "kind": state.data["error_type"]}


def reject_marked(args: CallbackArgs) -> None:
    """A ``before_event_handling`` hook that rejects events marked ``"reject": true``."""
    if args.state.data.get("reject"):
        raise FatalError("marked for rejection")
