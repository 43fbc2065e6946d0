"""Handlers of the approval tests: ones that ask a person first, and an error handler."""

from __future__ import annotations

from typing import Any

from agentflow import Event, State
from agentflow.errors import ApprovalRequired


def ask(event: Event, state: State) -> dict[str, Any]:
    """Raises ApprovalRequired until a person approved; then says who did."""
    if "approved_by" not in event.metadata:
        raise ApprovalRequired("spend 50 EUR", {"amount": 50})
    return {event.target_agent: event.metadata["approved_by"]}


def ask_returning(event: Event, state: State) -> Any:
    """Returns ApprovalRequired (rather than raising it) until approved."""
    if "approved_by" not in event.metadata:
        return ApprovalRequired("publish the post")
    return {event.target_agent: event.metadata["approved_by"]}


def fixer(event: Event, state: State) -> dict[str, Any]:
    """An [error_routing] handler: notes what it was given."""
    return {"fixed": [state.data["failed_agent"], state.data["error_type"],
                      state.data["exception_type"]]}  # fmt: skip


def ask_too_much(event: Event, state: State) -> None:
    """Asks with more data than a person can be shown (over 16 KB)."""
    raise ApprovalRequired("look at all this", {"blob": "x" * 20_000})
