"""What a memory store keeps and returns: records (a chunk of text with its vector), hits
(a record found for a query, with its score) and a store's statistics.

A record lives in a *scope*: ``knowledge`` for the knowledge base (``agentflow memory
ingest``), ``session:ID`` for the turns of one session (conversation memory). Within a scope a
record is stored once by ``content_hash`` (sha256 of its source and text), so ingesting or
remembering the same thing twice stores it once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, Field

from agentflow.models.recall import MemoryHit

KNOWLEDGE = "knowledge"
SESSION_PREFIX = "session:"


def session_scope(session_id: str) -> str:
    """The scope of one session's conversation memory."""
    return f"{SESSION_PREFIX}{session_id}"


def content_hash(source: str, text: str) -> str:
    """A record's identity within its scope: the same text from the same source is one record."""
    return hashlib.sha256(f"{source}\0{text}".encode()).hexdigest()


class Record(BaseModel):
    """One chunk of text and its vector, as stored."""

    scope: str = KNOWLEDGE
    source: str  # a file path, or "agent:NAME" for a remembered turn
    position: int = 0  # the chunk's index within its source (a turn's number in a session)
    start: int = 0  # character offsets of the chunk in its source
    end: int = 0
    text: str
    content_hash: str
    vector: list[float] = Field(default_factory=list, repr=False)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable across stores and re-ingestion: the scope and the content hash."""
        return hashlib.sha256(f"{self.scope}\0{self.content_hash}".encode()).hexdigest()[:16]


Hit = MemoryHit  # a record found for a query (agentflow/models/recall.py: it is in history)


class SourceStats(BaseModel):
    source: str
    scope: str
    chunks: int


class MemoryStats(BaseModel):
    """What ``agentflow memory stats`` shows."""

    provider: str
    location: str  # the file, the database (password hidden) or the in-process name
    dimensions: int
    records: int
    scopes: dict[str, int] = Field(default_factory=dict)  # records per scope
    sources: list[SourceStats] = Field(default_factory=list)
