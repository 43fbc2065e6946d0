"""The briefing desk's own agents: the research in between is a nested flow."""

from __future__ import annotations

from typing import Any

from agentflow import Event, FatalError, State


def intake(event: Event, state: State) -> dict[str, Any]:
    topic = str(state.data.get("topic", "")).strip().lower()
    if not topic:
        raise FatalError('input needs a "topic"')
    return {"topic": topic}


def writer(event: Event, state: State) -> dict[str, Any]:
    notes = state.data.get("notes", [])
    lines = [f"Briefing: {state.data['topic']}", *(f"- {note}" for note in notes)]
    return {"briefing": "\n".join(lines)}
