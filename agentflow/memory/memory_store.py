"""``provider = "memory"``: records in this process, for tests and development.

Not durable: the records live as long as the process (a worker restart forgets them) and are
seen only by it (a CLI command does not see a worker's). Stores are shared by name
(``connection``, default ``default``) within the process, so a store opened twice by the same
name holds the same records. Search compares the query with every record of its scopes
(pure Python cosine): fine for the few thousand records a test or a demo holds.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agentflow.config.memory import AgentMemoryConfig, SearchConfig
from agentflow.memory.errors import MemorySetupError
from agentflow.memory.ranking import (
    candidates,
    check_vectors,
    connection_text,
    cosine,
    hit,
    rank,
    stats_of,
)
from agentflow.memory.types import Hit, MemoryStats, Record


@dataclass
class _Shelf:
    """One named store: its dimensions and its records by (scope, content hash), in the
    order they were added."""

    dimensions: int
    records: dict[tuple[str, str], Record] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_SHELVES: dict[str, _Shelf] = {}
_SHELVES_LOCK = threading.Lock()


class InProcessStore:
    """A named store of this process (see the module's docstring: not durable)."""

    provider = "memory"

    def __init__(self, name: str, shelf: _Shelf, search: SearchConfig) -> None:
        self.name = name
        self.dimensions = shelf.dimensions
        self._shelf = shelf
        self._search = search

    @classmethod
    async def open(
        cls, memory: AgentMemoryConfig, environ: Mapping[str, str] | None = None
    ) -> InProcessStore:
        name = connection_text(memory, environ)
        with _SHELVES_LOCK:
            shelf = _SHELVES.setdefault(name, _Shelf(memory.dimensions))
        if shelf.dimensions != memory.dimensions:
            raise MemorySetupError(
                f"the in-process memory store {name!r} holds {shelf.dimensions}-dimension "
                f"vectors, but [agent_memory] dimensions = {memory.dimensions}: use "
                f"{shelf.dimensions}, or another store name (connection)"
            )
        return cls(name, shelf, memory.search)

    async def add(self, records: Sequence[Record]) -> int:
        check_vectors(records, self.dimensions, f"the in-process store {self.name!r}")
        added = 0
        with self._shelf.lock:
            for record in records:
                key = (record.scope, record.content_hash)
                if key not in self._shelf.records:
                    self._shelf.records[key] = record.model_copy(deep=True)
                    added += 1
        return added

    async def known(self, scope: str, hashes: Sequence[str]) -> set[str]:
        with self._shelf.lock:
            return {h for h in hashes if (scope, h) in self._shelf.records}

    async def search(
        self,
        vector: Sequence[float],
        query: str,
        *,
        scopes: Sequence[str],
        k: int,
        threshold: float = 0.0,
    ) -> list[Hit]:
        check_vectors([vector], self.dimensions, f"the in-process store {self.name!r}")
        if k <= 0:
            return []
        wanted = set(scopes)
        with self._shelf.lock:
            pool = [r for r in self._shelf.records.values() if r.scope in wanted]
        nearest = sorted(((r, cosine(vector, r.vector)) for r in pool), key=lambda pair: -pair[1])[
            : candidates(k)
        ]
        return rank(nearest, query, self._search, k=k, threshold=threshold)

    async def recent(self, scope: str, limit: int) -> list[Hit]:
        with self._shelf.lock:
            found = [r for r in self._shelf.records.values() if r.scope == scope]
        # Stable sort: records of one position stay in the order they were added.
        latest = sorted(found, key=lambda r: r.position)[-limit:] if limit > 0 else []
        return [hit(r, 1.0, 1.0) for r in latest]

    async def stats(self) -> MemoryStats:
        counts: dict[tuple[str, str], int] = {}
        with self._shelf.lock:
            for r in self._shelf.records.values():
                counts[r.source, r.scope] = counts.get((r.source, r.scope), 0) + 1
        location = f"memory:{self.name} (this process only, not durable)"
        rows = [(source, scope, n) for (source, scope), n in counts.items()]
        return stats_of(self.provider, location, self.dimensions, rows)

    async def forget(self, *, source: str | None = None, scope: str | None = None) -> int:
        if source is None and scope is None:
            raise ValueError("forget needs a source or a scope")
        with self._shelf.lock:
            gone = [
                key
                for key, r in self._shelf.records.items()
                if (source is None or r.source == source) and (scope is None or r.scope == scope)
            ]
            for key in gone:
                del self._shelf.records[key]
        return len(gone)

    async def close(self) -> None:
        """Nothing to release: the records stay for the next open of the same name."""
