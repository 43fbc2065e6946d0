"""The store interface every memory provider implements, and ``open_store``, which picks one
by ``[agent_memory] provider``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from agentflow.config.memory import AgentMemoryConfig
from agentflow.memory.types import Hit, MemoryStats, Record


class Store(Protocol):
    """A vector store of records. Every method may raise MemoryUnavailable (try again later)
    or MemorySetupError (a retry cannot help)."""

    provider: str
    dimensions: int

    async def add(self, records: Sequence[Record]) -> int:
        """Store records not yet in their scope (by content hash); returns how many were new.
        Every vector must have ``dimensions`` values (MemorySetupError otherwise)."""
        ...

    async def known(self, scope: str, hashes: Sequence[str]) -> set[str]:
        """Which of these content hashes the scope already holds."""
        ...

    async def search(
        self,
        vector: Sequence[float],
        query: str,
        *,
        scopes: Sequence[str],
        k: int,
        threshold: float = 0.0,
    ) -> list[Hit]:
        """The best ``k`` records of these scopes for the query, best first, scored with
        ``[agent_memory.search]`` (hybrid: cosine similarity and the query's words); records
        scoring under ``threshold`` are left out. An empty store returns []."""
        ...

    async def recent(self, scope: str, limit: int) -> list[Hit]:
        """The last ``limit`` records of a scope by position, oldest first (a session's
        latest turns), with score 1."""
        ...

    async def stats(self) -> MemoryStats: ...

    async def forget(self, *, source: str | None = None, scope: str | None = None) -> int:
        """Delete the records of a source and/or a scope (at least one given); returns how
        many were deleted."""
        ...

    async def close(self) -> None: ...


async def open_store(memory: AgentMemoryConfig, environ: Mapping[str, str] | None = None) -> Store:
    """The store ``memory`` names, connected and ready (its table created on first use).
    ``environ`` (default ``os.environ``) fills ``${VAR}`` in the connection."""
    if memory.provider == "sqlite":
        from agentflow.memory.sqlite_store import SqliteStore

        return await SqliteStore.open(memory, environ)
    if memory.provider == "pgvector":
        from agentflow.memory.pg_store import PgStore

        return await PgStore.open(memory, environ)
    from agentflow.memory.memory_store import InProcessStore

    return await InProcessStore.open(memory, environ)
