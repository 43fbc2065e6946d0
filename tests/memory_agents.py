"""Handlers of the memory tests: what a memory-enabled handler agent finds in
``state.context["memory"]``."""

from __future__ import annotations

from typing import Any

from agentflow import Event, State


def lookup(event: Event, state: State) -> dict[str, Any]:
    """Answers with the sources and texts it recalled, best first."""
    hits = state.context.get("memory", [])
    return {"recalled": [[hit["source"], hit["text"]] for hit in hits]}


def note(event: Event, state: State) -> dict[str, Any]:
    """Answers with what it was told and the earlier turns it recalls of its session."""
    hits = state.context.get("memory", [])
    turns = [hit["text"] for hit in hits if hit["scope"].startswith("session:")]
    return {"reply": f"noted {state.data['message']}", "turns": turns}
