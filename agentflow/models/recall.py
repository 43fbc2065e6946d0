"""What a memory-enabled agent recalls and remembers: the inputs and results of the
``memory_retrieve`` and ``memory_remember`` activities, recorded in workflow history (so the
trace shows what was retrieved, by id and score, and a replay never searches again)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field


class MemoryHit(BaseModel):
    """A record found for a query."""

    id: str
    scope: str  # "knowledge", or "session:ID" for a session's earlier turns
    source: str  # the file or web page ingested, or "agent:NAME" for a remembered turn
    position: int
    text: str
    score: float  # the ranking score (hybrid: semantic and keyword weights)
    similarity: float  # the cosine similarity of the vectors alone
    metadata: dict[str, Any] = Field(default_factory=dict)


class RecallInput(BaseModel):
    """``memory_retrieve``: what ``agent`` of ``flow`` should recall for ``query``."""

    flow: str
    agent: str
    query: str
    session_id: str | None = None


class Recalled(BaseModel):
    """What was recalled, within ``[agent_memory] rag_max_context_tokens``."""

    hits: list[MemoryHit] = Field(default_factory=list)
    include_sources: bool = True


class RememberInput(BaseModel):
    """``memory_remember``: a turn of ``agent`` in a session (its input, then its output);
    ``turn`` orders turns (milliseconds of workflow time)."""

    flow: str
    agent: str
    session_id: str
    turn: int
    texts: list[str]


def query_text(data: dict[str, Any]) -> str:
    """What an agent is asked, as text: the state's ``message`` when it is a string, else its
    data as JSON (the query its memory is searched with)."""
    message = data.get("message")
    if isinstance(message, str):
        return message
    return json.dumps(data, default=str, sort_keys=True)


def memory_prompt(recalled: Recalled, prompt: str) -> str:
    """An LLM agent's prompt with what it recalled before it, numbered, sources cited."""
    if not recalled.hits:
        return prompt
    lines = ["Relevant memory (cite the sources you use):"]
    for n, hit in enumerate(recalled.hits, 1):
        where = f" (source: {hit.source}#{hit.position})" if recalled.include_sources else ""
        lines.append(f"[{n}]{where} {hit.text}")
    return "\n".join(lines) + "\n\nInput:\n" + prompt
