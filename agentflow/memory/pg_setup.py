"""The pgvector store's table, made on first use: the extension (created when it is missing),
the table and its indexes, and a table of another vector length refused. ``PgSetup`` is
PgStore's part that does it (agentflow/memory/pg_store.py), apart to keep modules short.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import sql

from agentflow.memory.errors import MemorySetupError

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


class PgSetup:
    """Making and checking the table (PgStore's attributes, set by its ``__init__``)."""

    dimensions: int
    table: str
    database: str
    address: str
    _params: dict[str, Any]
    _iterative: bool
    _t: sql.Identifier
    _index: str

    def _hide(self, text: str) -> str:
        """``text`` on one line, without the password in any spelling."""
        password = str(self._params.get("password") or "")
        for spelling in {password, quote(password, safe=""), quote(password)} - {""}:
            text = text.replace(spelling, "***")
        return " ".join(text.split())

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
