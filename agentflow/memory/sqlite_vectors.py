"""How the sqlite store keeps and searches its vectors: each record's float32 vector in a
plain table (``memory_embeddings``), and a sign code of it in a sqlite-vec ``vec0`` table
partitioned by scope (``memory_codes``), which a search of a large scope scans first.

Comparing the query with every float vector of a scope grows linearly (100,000 x 384 values:
~90 ms a search, bench/RESULTS.md W10), over issue 20's 50 ms. So a scope of more than
``EXACT_ROWS`` records is searched in two steps: the records whose codes differ least from
the query's (Hamming distance, computed by sqlite-vec in C over 64 bytes a record), then
exact cosine on those records' float vectors (read from the plain table: a ``vec0`` point
read costs ~0.2 ms, too much for a thousand). A smaller scope is compared exactly. Each
step searches the scope alone (its partition, its records), so a scope is never crowded out
by another's records.

The code is SimHash: the signs of the vector after a fixed random rotation (random signs,
then a Walsh-Hadamard transform), so the share of differing bits estimates the angle between
two vectors whatever the embedding's coordinates look like. sqlite-vec's
``vec_quantize_binary`` (the signs of the vector as it is) kept 3-17 % of the exact top 10 at
100,000 of the dummy embedder's sparse vectors; these codes keep ~96 %. The rotation's signs
come from SHAKE-256 of a fixed text, so every process and Python makes the same codes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import operator
import struct
from collections.abc import Iterator, Sequence
from typing import Any

from agentflow.memory.errors import MemorySetupError

# Scopes of up to this many records are searched exactly (~8 ms at 4,096 x 384 values).
EXACT_ROWS = 4096
# Most records rescored after the codes' scan: 64 per candidate (2,560 for k = 10), at least
# 1,024, at most sqlite-vec's largest k. Each costs ~3 µs; 32 a candidate found 2 % less.
COARSE_PER_CANDIDATE = 64
MIN_COARSE = 1024
MAX_COARSE = 4096
_MIGRATION_BATCH = 1000
_COLUMNS = 'r.scope, r.source, r.position, r.start, r."end", r.text, r.content_hash, r.metadata'
SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_embeddings (id INTEGER PRIMARY KEY, embedding BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS memory_codes USING vec0(scope TEXT PARTITION KEY,
    code BIT[{bits}]);
"""
# The ``fetch`` records of ``ids`` (a query of record ids of the scope) nearest by cosine.
_NEAREST = (
    "WITH ids AS ({ids}), near AS (SELECT e.id, vec_distance_cosine(e.embedding, :vector) "
    "AS distance FROM ids JOIN memory_embeddings e ON e.id = ids.id "
    "ORDER BY distance LIMIT :fetch) "
    f"SELECT {_COLUMNS}, near.distance FROM near JOIN memory_records r ON r.id = near.id"
)
_ALL = "SELECT id FROM memory_records WHERE scope = :scope"
_CODES = "SELECT rowid AS id, distance FROM memory_codes WHERE code MATCH vec_bit(:code) AND "
_CLOSE = _CODES + "k = :coarse AND scope = :scope AND distance <= :within"
_FIRST = _CODES + "k = :first AND scope = :scope"
_LARGE = "SELECT EXISTS (SELECT 1 FROM memory_records WHERE scope = ? LIMIT 1 OFFSET ?)"


def blob(vector: Sequence[float]) -> bytes:
    """sqlite-vec's float32 vector format (what sqlite_vec.serialize_float32 makes)."""
    return struct.pack(f"={len(vector)}f", *vector)


def code_bits(dimensions: int) -> int:
    """Bits in a code: the vector's length rounded up to a power of two, at least 512."""
    return max(512, 1 << max(dimensions - 1, 1).bit_length())


@functools.cache
def _signs(bits: int) -> tuple[float, ...]:
    stream = hashlib.shake_256(b"agentflow memory sign codes").digest(bits // 8)
    return tuple(1.0 if stream[i // 8] >> (i % 8) & 1 else -1.0 for i in range(bits))


def sign_code(vector: Sequence[float]) -> bytes:
    """The vector's code: random signs, a Walsh-Hadamard transform (padded with zeros to
    ``code_bits``), and one bit per value, set when it is positive."""
    bits = code_bits(len(vector))
    values = list(map(operator.mul, vector, _signs(bits)))  # map: twice as fast as a for
    values += [0.0] * (bits - len(values))
    for _ in range(bits.bit_length() - 1):  # each pass pairs neighbours: log2(bits) passes
        even, odd = values[0::2], values[1::2]
        values = [*map(operator.add, even, odd), *map(operator.sub, even, odd)]
    digits = "".join(["1" if value > 0.0 else "0" for value in reversed(values)])
    return int(digits, 2).to_bytes(bits // 8, "little")


def coarse(fetch: int) -> int:
    """How many records, at most, the codes' scan keeps for ``fetch`` candidates."""
    return min(max(fetch * COARSE_PER_CANDIDATE, MIN_COARSE), MAX_COARSE)


def insert(db: Any, record_id: int, scope: str, vector: bytes, code: bytes) -> None:
    """A record's vector and code (its row in memory_records is there already)."""
    db.execute("INSERT INTO memory_embeddings VALUES (?, ?)", (record_id, vector))
    db.execute("INSERT INTO memory_codes (rowid, scope, code) VALUES (?, ?, vec_bit(?))",
               (record_id, scope, code))  # fmt: skip


def nearest(db: Any, scope: str, vector: Sequence[float], fetch: int,
            exact_rows: int) -> list[Any]:  # fmt: skip
    """The scope's ``fetch`` records nearest the vector, as (record columns…, distance) rows:
    exactly when the scope holds at most ``exact_rows``, else among the records whose codes
    are nearest: the codes within √bits (two standard deviations of the distance between
    unrelated vectors' codes) of the ``fetch / 4``-th nearest code's distance, the nearest
    ``coarse(fetch)`` of them. sqlite-vec picks its k nearest by k passes over each chunk of
    1,024 codes, and drops the codes beyond a ``distance`` bound first: so two scans (the
    bound, then the candidates), each passing over few codes, cost less than one keeping
    ``coarse(fetch)`` (k = 160 alone took 24 ms at 100,000 codes, k = 640 130 ms)."""
    args = {"scope": scope, "vector": blob(vector), "fetch": fetch}
    [(large,)] = db.execute(_LARGE, (scope, exact_rows))
    if not large:
        return list(db.execute(_NEAREST.format(ids=_ALL), args))
    args |= {"code": sign_code(vector), "coarse": coarse(fetch), "first": max(fetch // 4, 10)}
    farthest = max((distance for _, distance in db.execute(_FIRST, args)), default=0.0)
    args["within"] = farthest + math.sqrt(code_bits(len(vector)))
    return list(db.execute(_NEAREST.format(ids=_CLOSE), args))


def delete(db: Any, ids: Sequence[tuple[int]]) -> None:
    """Forget the vectors and codes of these record ids."""
    db.executemany("DELETE FROM memory_embeddings WHERE id = ?", ids)
    db.executemany("DELETE FROM memory_codes WHERE rowid = ?", ids)


@contextlib.contextmanager
def transaction(db: Any) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on an error): the connection is in autocommit mode,
    so each change is one explicit transaction, holding the write lock from its start."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def check_version(db: Any) -> None:
    """MemorySetupError unless sqlite-vec is 0.1.7 or newer (``distance`` constraints in a
    nearest-neighbour query, which ``nearest`` uses)."""
    [(version,)] = db.execute("SELECT vec_version()")
    numbers = tuple(int(part) for part in version.lstrip("v").split("-")[0].split(".")[:3])
    if numbers < (0, 1, 7):
        raise MemorySetupError(
            f"sqlite-vec {version} is too old for the memory store, which needs 0.1.7 or "
            "newer: pip install 'sqlite-vec>=0.1.7'"
        )


def migrate(db: Any) -> None:
    """A file made before the codes keeps its vectors in a sqlite-vec ``vec0`` table
    (``memory_vectors``): copy them here with their codes, 1,000 records a transaction (an
    interrupted migration goes on from the last one: ``memory_meta`` 'migrated'), then drop
    it. Nothing to do in a newer file."""
    while True:
        with transaction(db):
            tables = "SELECT 1 FROM sqlite_master WHERE name = 'memory_vectors'"
            if not db.execute(tables).fetchone():  # a newer file, or migrated by another process
                return
            found = db.execute("SELECT value FROM memory_meta WHERE key = 'migrated'").fetchone()
            done = int(found[0]) if found else 0
            rows = list(db.execute("SELECT id, scope FROM memory_records WHERE id > ? "
                                   "ORDER BY id LIMIT ?", (done, _MIGRATION_BATCH)))  # fmt: skip
            if not rows:
                db.execute("DROP TABLE memory_vectors")
                db.execute("DELETE FROM memory_meta WHERE key = 'migrated'")
                return
            for record_id, scope in rows:
                query = "SELECT embedding FROM memory_vectors WHERE rowid = ?"
                if vector := db.execute(query, (record_id,)).fetchone():
                    floats = struct.unpack(f"={len(vector[0]) // 4}f", vector[0])
                    insert(db, record_id, scope, vector[0], sign_code(floats))
            db.execute("INSERT OR REPLACE INTO memory_meta VALUES ('migrated', ?)",
                       (str(rows[-1][0]),))  # fmt: skip
