"""The research flow's agents: look a topic up in a small library, then keep the gist."""

from __future__ import annotations

from typing import Any

from agentflow import Event, State

LIBRARY = {
    "durable": "Durable execution records every step, so a crash resumes where it stopped.",
    "execution": "An execution's history is its trace: each step, input and result.",
    "workflow": "A workflow decides what runs next; activities do the work.",
    "agent": "An agent is one step of a flow: a handler, an LLM call or a whole flow.",
}


def search(event: Event, state: State) -> dict[str, Any]:
    words = str(state.data.get("topic", "")).split()
    return {"sources": [LIBRARY[word] for word in words if word in LIBRARY]}


def digest(event: Event, state: State) -> dict[str, Any]:
    sources = state.data.get("sources", [])
    notes = [source.split(":")[0].split(",")[0].rstrip(".") for source in sources]
    return {"notes": notes or ["nothing found in the library"]}
