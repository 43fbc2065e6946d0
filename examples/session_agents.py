"""The support chat of examples/session.toml: agents that remember the conversation in the
session's context, and the hooks around each message."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agentflow import CallbackArgs, Event, FatalError, State

HISTORY_KEPT = 20
AUDIT_LOG = Path(".agentflow") / "audit" / "support-chat.log"


def remember(event: Event, state: State) -> State:
    """Adds the message to the conversation kept in the session's context."""
    out = state.clone()
    history = [*state.context.get("history", []), str(state.data.get("message", ""))]
    out.context["history"] = history[-HISTORY_KEPT:]
    return out


def answer(event: Event, state: State) -> dict[str, Any]:
    message = str(state.data.get("message", "")).strip()
    if not message:
        raise FatalError("the message is empty")
    history = state.context.get("history", [])
    earlier = [m for m in history[:-1] if m]
    if "order" in message.lower():
        reply = "Your order is on its way."
    elif earlier:
        reply = f"Noted. Earlier you said: {earlier[-1]!r}."
    else:
        reply = "Hello! How can I help?"
    return {"reply": reply, "messages_so_far": len(history)}


def triage(event: Event, state: State) -> dict[str, Any]:
    """The [error_routing] handler: a polite answer instead of a failed event."""
    return {"reply": "Sorry, I did not get that. Could you say it again?",
            "failed_agent": state.data["failed_agent"]}  # fmt: skip


def refuse_secrets(args: CallbackArgs) -> None:
    """before_event_handling: a message that carries a password is rejected (dead-lettered)."""
    if "password" in str(args.state.data.get("message", "")).lower():
        raise FatalError("messages must not carry passwords")


def audit(args: CallbackArgs) -> None:
    """after_event_handling: one line per message; ``error`` when an agent failed (whether or
    not the error handler then took the event)."""
    AUDIT_LOG.parent.mkdir(parents=True, exist_ok=True)
    outcome = "error" if args.error else "ok"
    line = f"{args.event.session_id}\t{args.event.id}\t{outcome}\n"
    fd = os.open(AUDIT_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
