"""``provider = "pgvector"``: the records in a PostgreSQL table (``[agent_memory.pgvector]
table_name``) with a ``vector(dimensions)`` column, searched by cosine distance (HNSW index).

The extension and the table are made on first use, under an advisory lock (workers starting
together do not race). A server out of reach is MemoryUnavailable (a retry may succeed); a
wrong password, a missing database or extension, a table of another dimension is
MemorySetupError. The password is never shown, in errors or in ``stats()``.

HNSW search with a scope filter comes back short when other scopes hold the nearest vectors
(the index yields ``hnsw.ef_search`` candidates, then the filter drops them): pgvector 0.8's
iterative scan goes on, and when fewer records come back than the scopes hold, the search is
repeated exactly over the scopes' records.

Until a table is analysed, the planner sorts every record of the scopes instead of walking
the HNSW index (W10: 13.4 against 2.5 ms at 10,000 records), and autovacuum may take a
minute to get to it: so an ``add`` runs ANALYZE once 1,000 records, and a fifth of the
table, are new since the table was last analysed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector_async
from psycopg import sql
from psycopg.types.json import Jsonb

from agentflow.config.memory import AgentMemoryConfig, SearchConfig
from agentflow.memory.errors import MemorySetupError, MemoryUnavailable
from agentflow.memory.pg_setup import PgSetup
from agentflow.memory.ranking import (
    candidates,
    check_vectors,
    connection_text,
    hit,
    rank,
    record_of,
    stats_of,
)
from agentflow.memory.types import Hit, MemoryStats, Record

T = TypeVar("T")
_COLUMNS = "scope, source, position, start_offset, end_offset, text, content_hash, metadata"
# ANALYZE after an add when this many records and a fifth of the table are new since the last
# analysis: those this store added, or the server's count of changes (all processes'), if more
# (the table's estimated rows and its changes since, as of the last analysis).
_ANALYZE_ROWS = 1000
_ANALYZE_SHARE = 0.2
_CHANGED = ("SELECT c.reltuples, pg_stat_get_mod_since_analyze(c.oid) FROM pg_class c "
            "WHERE c.oid = to_regclass(%s)")  # fmt: skip
_TRANSIENT = ("starting up", "shutting down", "recovery mode", "too many", "connection slots")


class PgStore(PgSetup):
    """A memory store in a PostgreSQL table (see the module's docstring)."""

    provider = "pgvector"

    def __init__(self, memory: AgentMemoryConfig, conninfo: str, params: dict[str, Any]) -> None:
        self.dimensions = memory.dimensions
        self.table = memory.pgvector.table_name
        self._search: SearchConfig = memory.search
        self._conninfo = conninfo
        self._params = params
        host, port = params.get("host") or os.environ.get("PGHOST"), params.get("port")
        self.address = f"{host or 'localhost'}:{port or os.environ.get('PGPORT') or 5432}"
        self.database = str(params.get("dbname") or params.get("user") or "postgres")
        user = f"{params['user']}@" if params.get("user") else ""
        self.location = f"postgresql://{user}{self.address}/{self.database} (table {self.table})"
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._iterative = False
        self._unanalysed = 0  # records this store added since it last ran ANALYZE
        self._t = sql.Identifier(self.table)
        # Index names from a table name of up to 63 characters: cut, and told apart by a hash.
        self._index = f"{self.table[:40]}_{hashlib.sha256(self.table.encode()).hexdigest()[:8]}"

    @classmethod
    async def open(
        cls, memory: AgentMemoryConfig, environ: Mapping[str, str] | None = None
    ) -> PgStore:
        conninfo = connection_text(memory, environ).strip()
        try:
            params = psycopg.conninfo.conninfo_to_dict(conninfo) if conninfo else None
        except psycopg.ProgrammingError:
            params = None
        if params is None:
            raise MemorySetupError(
                "[agent_memory] pgvector connection is not a PostgreSQL connection string: "
                "write postgresql://USER:PASSWORD@HOST:PORT/DATABASE (or key=value pairs)"
            )
        store = cls(memory, conninfo, params)
        try:
            await store._call(store._setup)
        except BaseException:
            await store.close()
            raise
        return store

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        timeout = {} if "connect_timeout" in self._params else {"connect_timeout": 10}
        conninfo = psycopg.conninfo.make_conninfo(self._conninfo, **timeout)
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as error:
            text = self._hide(str(error))
            if "FATAL" in text and not any(word in text for word in _TRANSIENT):
                raise MemorySetupError(
                    f"PostgreSQL at {self.address} refused the memory store: {text}"
                ) from None
            raise MemoryUnavailable(
                f"PostgreSQL at {self.address} (database {self.database}) is not reachable: {text}"
            ) from None
        if self._conn is not None:  # reconnecting: the tables are there, the type is not
            await register_vector_async(conn)
        return conn

    async def _call(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run ``work`` on the connection (reconnecting after a lost one), one at a time,
        with psycopg's errors said as the store's."""
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await self._connect()
            try:
                return await work(self._conn)
            except psycopg.OperationalError as error:
                if self._conn.broken:
                    await self._conn.close()
                raise MemoryUnavailable(
                    f"PostgreSQL at {self.address} failed the memory store's query: "
                    f"{self._hide(str(error))}"
                ) from None
            except psycopg.Error as error:
                raise MemorySetupError(
                    f"PostgreSQL at {self.address} (table {self.table}): {self._hide(str(error))}"
                ) from None

    async def add(self, records: Sequence[Record]) -> int:
        check_vectors(records, self.dimensions, f"table {self.table} at {self.address}")
        rows = [
            (r.scope, r.source, r.position, r.start, r.end, r.text, r.content_hash,
             Jsonb(r.metadata), Vector([float(x) for x in r.vector]))
            for r in records
        ]  # fmt: skip
        insert = sql.SQL(
            "INSERT INTO {t} (" + _COLUMNS + ", embedding) VALUES (%s, %s, %s, %s, %s, %s, %s, "
            "%s, %s) ON CONFLICT (scope, content_hash) DO NOTHING"
        ).format(t=self._t)

        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            if not rows:
                return 0
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(insert, rows)
                added = max(cursor.rowcount, 0)
                await cursor.execute(_CHANGED, [self._t.as_string(conn)])
                analysed, changed = await cursor.fetchone() or (0.0, 0)
            self._unanalysed += added  # ANALYZE when many are new: see the module's docstring
            changed = max(changed + added, self._unanalysed)
            if added and changed >= max(_ANALYZE_ROWS, _ANALYZE_SHARE * max(analysed, 0.0)):
                await conn.execute(sql.SQL("ANALYZE {t}").format(t=self._t))
                self._unanalysed = 0
            return added

        return await self._call(work)

    async def _fetch(self, text: str, args: Sequence[Any]) -> list[Any]:
        """The rows of one statement (``{t}`` is the table)."""
        query = sql.SQL(text).format(t=self._t)

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
            return await (await conn.execute(query, args)).fetchall()

        return await self._call(work)

    async def known(self, scope: str, hashes: Sequence[str]) -> set[str]:
        text = "SELECT content_hash FROM {t} WHERE scope = %s AND content_hash = ANY(%s)"
        return {row[0] for row in await self._fetch(text, [scope, list(hashes)])}

    async def search(
        self,
        vector: Sequence[float],
        query: str,
        *,
        scopes: Sequence[str],
        k: int,
        threshold: float = 0.0,
    ) -> list[Hit]:
        check_vectors([vector], self.dimensions, f"table {self.table} at {self.address}")
        if k <= 0 or not scopes:
            return []
        fetch, wanted, probe = candidates(k), list(dict.fromkeys(scopes)), Vector(list(vector))
        nearest = sql.SQL(
            "SELECT " + _COLUMNS + ", embedding <=> %s AS distance FROM {t} "
            "WHERE scope = ANY(%s) ORDER BY embedding <=> %s LIMIT %s"
        ).format(t=self._t)
        # OFFSET 0 keeps the planner from ordering through the index: every record is compared.
        exact = sql.SQL(
            "SELECT * FROM (SELECT " + _COLUMNS + ", embedding <=> %s AS distance FROM {t} "
            "WHERE scope = ANY(%s) OFFSET 0) found ORDER BY distance LIMIT %s"
        ).format(t=self._t)
        count = sql.SQL("SELECT count(*) FROM {t} WHERE scope = ANY(%s)").format(t=self._t)

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL hnsw.ef_search = {min(max(fetch, 40), 1000)}")
                if self._iterative:
                    await conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                rows = await (await conn.execute(nearest, [probe, wanted, probe, fetch])).fetchall()
                if len(rows) < fetch:
                    [(held,)] = await (await conn.execute(count, [wanted])).fetchall()
                    if held > len(rows):
                        rows = await (await conn.execute(exact, [probe, wanted, fetch])).fetchall()
            return rows

        found = [(record_of(row), 1.0 - float(row[8])) for row in await self._call(work)]
        return rank(found, query, self._search, k=k, threshold=threshold)

    async def recent(self, scope: str, limit: int) -> list[Hit]:
        text = f"SELECT {_COLUMNS} FROM {{t}} WHERE scope = %s ORDER BY position DESC, id DESC"
        rows = await self._fetch(text + " LIMIT %s", [scope, max(limit, 0)])
        return [hit(record_of(row), 1.0, 1.0) for row in reversed(rows)]

    async def stats(self) -> MemoryStats:
        counts = await self._fetch("SELECT source, scope, count(*) FROM {t} GROUP BY 1, 2", [])
        return stats_of(self.provider, self.location, self.dimensions, counts)

    async def forget(self, *, source: str | None = None, scope: str | None = None) -> int:
        if source is None and scope is None:
            raise ValueError("forget needs a source or a scope")
        text = "DELETE FROM {t} WHERE source = coalesce(%s, source) AND scope = coalesce(%s, scope)"
        return len(await self._fetch(text + " RETURNING id", [source, scope]))

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
