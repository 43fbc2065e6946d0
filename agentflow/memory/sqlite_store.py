"""``provider = "sqlite"`` (the default): the records in a SQLite file (``connection``, default
``.agentflow/memory.db``), their vectors and sign codes beside them, compared by sqlite-vec's
functions (agentflow/memory/sqlite_vectors.py says how a search uses them).

Nothing to install or run: sqlite-vec is a loadable extension shipped in its wheel. Many
Pythons' ``sqlite3`` cannot load extensions, so then ``pysqlite3`` (a SQLite built with that)
is used. A search of several scopes searches each alone, so records of other scopes never
crowd a scope's results out. The file records its vectors' length; opened with another
``dimensions`` it refuses, rather than mixing vectors of two models. A file made before the
sign codes is migrated when opened. SQLite calls block, so they run in a thread, one at a time
on the store's one connection; the file is in WAL mode, so other processes can read while a
worker writes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from agentflow.config.memory import AgentMemoryConfig, SearchConfig
from agentflow.memory.errors import MemorySetupError, MemoryUnavailable
from agentflow.memory.ranking import (
    candidates,
    check_vectors,
    connection_text,
    hit,
    rank,
    record_of,
    stats_of,
)
from agentflow.memory.sqlite_vectors import (
    EXACT_ROWS,
    SCHEMA,
    blob,
    check_version,
    code_bits,
    delete,
    insert,
    migrate,
    nearest,
    sign_code,
    transaction,
)
from agentflow.memory.types import Hit, MemoryStats, Record

T = TypeVar("T")
_COLUMNS = 'scope, source, position, start, "end", text, content_hash, metadata'
_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS memory_records (id INTEGER PRIMARY KEY, scope TEXT NOT NULL,
    source TEXT NOT NULL, position INTEGER NOT NULL, start INTEGER NOT NULL,
    "end" INTEGER NOT NULL, text TEXT NOT NULL, content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL, created REAL NOT NULL, UNIQUE (scope, content_hash));
CREATE INDEX IF NOT EXISTS memory_records_scope_position ON memory_records (scope, position);
CREATE INDEX IF NOT EXISTS memory_records_source ON memory_records (source);
"""
    + SCHEMA
)


def sqlite_module() -> Any:
    """A DB-API sqlite that can load extensions: the standard one when it can, else
    pysqlite3's."""
    import sqlite3

    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        from pysqlite3 import dbapi2  # type: ignore[import-untyped]
    except ImportError:
        raise MemorySetupError(
            "this Python's sqlite3 cannot load extensions (sqlite-vec needs that) and "
            "pysqlite3 is not installed: pip install pysqlite3-binary, or use a Python whose "
            'sqlite3 can, or [agent_memory] provider = "pgvector" or "memory"'
        ) from None
    return dbapi2


class SqliteStore:
    """A memory store in one SQLite file (see the module's docstring)."""

    provider = "sqlite"

    def __init__(self, db: Any, module: Any, location: str, dimensions: int,
                 search: SearchConfig) -> None:  # fmt: skip
        self.dimensions = dimensions
        self.location = location
        self._db: Any = db
        self._errors: Any = module.Error
        self._search = search
        self._lock = threading.Lock()
        # Scopes of up to this many records are searched exactly (sqlite_vectors.py).
        self.exact_rows = EXACT_ROWS

    @classmethod
    async def open(
        cls, memory: AgentMemoryConfig, environ: Mapping[str, str] | None = None
    ) -> SqliteStore:
        location = connection_text(memory, environ)
        if location != ":memory:":
            location = str(Path(location).expanduser().absolute())
        module = sqlite_module()
        db = await asyncio.to_thread(_connect, module, location, memory.dimensions)
        return cls(db, module, location, memory.dimensions, memory.search)

    async def _run(self, work: Callable[[Any], T]) -> T:
        def locked() -> T:
            with self._lock:
                if self._db is None:
                    raise MemorySetupError(f"the memory store {self.location} is closed")
                return work(self._db)

        try:
            return await asyncio.to_thread(locked)
        except self._errors as error:
            raise _failure(error, self.location) from error

    async def add(self, records: Sequence[Record]) -> int:
        check_vectors(records, self.dimensions, f"the memory store {self.location}")
        now = time.time()
        rows = [
            (r.scope, r.source, r.position, r.start, r.end, r.text, r.content_hash,
             json.dumps(r.metadata, sort_keys=True), now)
            for r in records
        ]  # fmt: skip
        # Outside the store's lock: ~0.3 ms of Python a vector (384 values).
        vectors = await asyncio.to_thread(lambda: [(blob(r.vector), sign_code(r.vector))
                                                   for r in records])  # fmt: skip

        def work(db: Any) -> int:
            added = 0
            with transaction(db):
                for row, (vector, code) in zip(rows, vectors, strict=True):
                    cursor = db.execute(
                        f"INSERT OR IGNORE INTO memory_records ({_COLUMNS}, created) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                    if cursor.rowcount == 1:
                        insert(db, cursor.lastrowid, row[0], vector, code)
                        added += 1
            return added

        return await self._run(work)

    async def known(self, scope: str, hashes: Sequence[str]) -> set[str]:
        query = "SELECT content_hash FROM memory_records WHERE scope = ? AND content_hash = ?"

        def work(db: Any) -> set[str]:
            return {h for h in dict.fromkeys(hashes) if db.execute(query, (scope, h)).fetchone()}

        return await self._run(work)

    async def search(
        self,
        vector: Sequence[float],
        query: str,
        *,
        scopes: Sequence[str],
        k: int,
        threshold: float = 0.0,
    ) -> list[Hit]:
        check_vectors([vector], self.dimensions, f"the memory store {self.location}")
        if k <= 0 or not scopes:
            return []
        fetch, exact_rows = candidates(k), self.exact_rows

        def work(db: Any) -> list[tuple[Record, float]]:
            found: list[tuple[Record, float]] = []
            # One nearest-neighbour query per scope, merged by distance.
            for scope in dict.fromkeys(scopes):
                rows = nearest(db, scope, vector, fetch, exact_rows)
                found += [(record_of(row), 1.0 - row[8]) for row in rows]
            found.sort(key=lambda pair: -pair[1])
            return found[:fetch]

        return rank(await self._run(work), query, self._search, k=k, threshold=threshold)

    async def recent(self, scope: str, limit: int) -> list[Hit]:
        def work(db: Any) -> list[Record]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM memory_records WHERE scope = ? "
                "ORDER BY position DESC, id DESC LIMIT ?",
                (scope, max(limit, 0)),
            )
            return [record_of(row) for row in rows]

        return [hit(r, 1.0, 1.0) for r in reversed(await self._run(work))]

    async def stats(self) -> MemoryStats:
        query = "SELECT source, scope, count(*) FROM memory_records GROUP BY source, scope"
        counts = await self._run(lambda db: list(db.execute(query)))
        return stats_of(self.provider, self.location, self.dimensions, counts)

    async def forget(self, *, source: str | None = None, scope: str | None = None) -> int:
        if source is None and scope is None:
            raise ValueError("forget needs a source or a scope")
        query = "SELECT id FROM memory_records WHERE coalesce(?, source) = source AND "
        query += "coalesce(?, scope) = scope"

        def work(db: Any) -> int:
            with transaction(db):
                ids = list(db.execute(query, (source, scope)))
                delete(db, ids)
                db.executemany("DELETE FROM memory_records WHERE id = ?", ids)
            return len(ids)

        return await self._run(work)

    async def close(self) -> None:
        def work() -> None:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None

        await asyncio.to_thread(work)


def _connect(module: Any, location: str, dimensions: int) -> Any:
    """Open the file (its folder made), load sqlite-vec, create the tables, check the
    dimensions the file was made with, and migrate a file made before the sign codes."""
    try:
        import sqlite_vec  # type: ignore[import-untyped]
    except ImportError:
        raise MemorySetupError(
            'provider = "sqlite" needs the sqlite-vec package: pip install sqlite-vec'
        ) from None
    if location != ":memory:":
        try:
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise MemorySetupError(f"cannot create the folder of {location}: {error}") from None
    db = None
    try:
        db = module.connect(location, timeout=30, isolation_level=None, check_same_thread=False)
        db.enable_load_extension(True)
        sqlite_vec.load(db)
        db.enable_load_extension(False)
        check_version(db)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA mmap_size = 1073741824")  # reads without copies: ~20 % faster searches
        with transaction(db):
            db.execute("CREATE TABLE IF NOT EXISTS memory_meta (key TEXT PRIMARY KEY, value TEXT)")
            db.execute(
                "INSERT OR IGNORE INTO memory_meta VALUES ('dimensions', ?)", (str(dimensions),)
            )
            [(made,)] = db.execute("SELECT value FROM memory_meta WHERE key = 'dimensions'")
            if int(made) != dimensions:
                raise MemorySetupError(
                    f"the memory store {location} holds {made}-dimension vectors, but "
                    f"[agent_memory] dimensions = {dimensions}: set dimensions = {made} (the "
                    "embedding model it was made with), or use another file (connection)"
                )
            for statement in _SCHEMA.format(bits=code_bits(dimensions)).split(";"):
                if statement.strip():
                    db.execute(statement)
        migrate(db)
        return db
    except BaseException as error:
        if db is not None:
            db.close()
        if isinstance(error, module.Error):
            raise _failure(error, location) from error
        raise


def _failure(error: Exception, location: str) -> Exception:
    """A busy file is transient (another process holds the write lock); anything else
    (not a database, read-only, a disk error) needs someone to look."""
    text = str(error)
    if "locked" in text or "busy" in text:
        return MemoryUnavailable(f"the memory store {location} is busy: {text}")
    return MemorySetupError(f"the memory store {location} failed: {text}")
