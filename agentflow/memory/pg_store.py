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
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector_async
from psycopg import sql
from psycopg.types.json import Jsonb

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
from agentflow.memory.types import Hit, MemoryStats, Record

T = TypeVar("T")
_COLUMNS = "scope, source, position, start_offset, end_offset, text, content_hash, metadata"
_TABLE = (
    "CREATE TABLE IF NOT EXISTS {t} (id bigserial PRIMARY KEY, scope text NOT NULL, source text"
    " NOT NULL, position bigint NOT NULL, start_offset integer NOT NULL, end_offset integer NOT"
    " NULL, text text NOT NULL, content_hash text NOT NULL, metadata jsonb NOT NULL, created"
    " timestamptz NOT NULL DEFAULT now(), embedding vector({d}) NOT NULL, UNIQUE (scope,"
    " content_hash))",
    "CREATE INDEX IF NOT EXISTS {s} ON {t} (scope, position)",
    "CREATE INDEX IF NOT EXISTS {i} ON {t} USING hnsw (embedding vector_cosine_ops)",
)
# pgvector's limit for an HNSW index on vector: longer vectors are searched exactly.
_HNSW_MAX_DIMENSIONS = 2000
_TRANSIENT = ("starting up", "shutting down", "recovery mode", "too many", "connection slots")


class PgStore:
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

    def _hide(self, text: str) -> str:
        """``text`` on one line, without the password in any spelling."""
        password = str(self._params.get("password") or "")
        for spelling in {password, quote(password, safe=""), quote(password)} - {""}:
            text = text.replace(spelling, "***")
        return " ".join(text.split())

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

    async def _setup(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                               [f"agentflow memory {self.table}"])  # fmt: skip
            version = await self._extension(conn)
            self._iterative = tuple(int(p) for p in version.split(".")[:2]) >= (0, 8)
            await self._check_table(conn)
            index = sql.Identifier(f"{self._index}_hnsw")
            scope_index = sql.Identifier(f"{self._index}_scope")
            dims = sql.SQL(str(self.dimensions))
            for statement in _TABLE if self.dimensions <= _HNSW_MAX_DIMENSIONS else _TABLE[:2]:
                await conn.execute(sql.SQL(statement).format(t=self._t, d=dims, i=index,
                                                             s=scope_index))  # fmt: skip
        await register_vector_async(conn)

    async def _extension(self, conn: psycopg.AsyncConnection[Any]) -> str:
        """pgvector's version in this database, creating the extension when it is missing."""
        query = "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        found = await (await conn.execute(query)).fetchone()
        if found:
            return str(found[0])
        try:
            async with conn.transaction():
                await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as error:
            if isinstance(error, psycopg.OperationalError):
                raise
            said = "; ".join(filter(None, (error.diag.message_primary, error.diag.message_hint)))
            major = conn.info.server_version // 10000
            raise MemorySetupError(
                f"the pgvector extension is not installed in database {self.database} at "
                f"{self.address} ({self._hide(said or str(error))}): install it on the server "
                f"(Debian: apt install postgresql-{major}-pgvector) and have a superuser run "
                'CREATE EXTENSION vector there once, or use provider = "sqlite"'
            ) from None
        return await self._extension(conn)

    async def _check_table(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """MemorySetupError when the table exists with another vector length (or is not a
        memory table at all)."""
        cursor = await conn.execute(
            "SELECT (SELECT atttypmod FROM pg_attribute WHERE attrelid = c AND attname = "
            "'embedding' AND NOT attisdropped) FROM to_regclass(%s) c WHERE c IS NOT NULL",
            [self._t.as_string(conn)],
        )
        row = await cursor.fetchone()
        where = f"table {self.table} in database {self.database} at {self.address}"
        if row is not None and row[0] is None:
            raise MemorySetupError(
                f"{where} is not a memory table (it has no embedding column): set "
                "[agent_memory.pgvector] table_name to another name"
            )
        if row is not None and row[0] != self.dimensions:
            raise MemorySetupError(
                f"{where} holds {row[0]}-dimension vectors, but [agent_memory] dimensions = "
                f"{self.dimensions}: set dimensions = {row[0]} (the embedding model it was made "
                "with), or another table_name"
            )

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
                return max(cursor.rowcount, 0)

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
