"""The memory stores behave alike: each test runs on sqlite-vec (a file), pgvector (a real
PostgreSQL that tests/_postgres.py starts) and the in-process store. Then what only one store
can get wrong: a server that is down or lacks pgvector, a lost connection, a file reopened."""

from __future__ import annotations

import functools
import itertools
import operator
import random
import socket
import string
import struct
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentflow.config.memory import AgentMemoryConfig, SearchConfig
from agentflow.memory import sqlite_vectors
from agentflow.memory.chunking import chunk_text
from agentflow.memory.dummy import dummy_vector
from agentflow.memory.errors import MemorySetupError, MemoryUnavailable
from agentflow.memory.ranking import cosine, hybrid_score, keyword_share
from agentflow.memory.sqlite_store import sqlite_module
from agentflow.memory.store import Store, open_store
from agentflow.memory.types import KNOWLEDGE, Record, content_hash, session_scope

if TYPE_CHECKING:
    from tests._postgres import PostgresServer


DIMS = 8
SESSION = session_scope("s-1")
PASSWORD = "pw-never-shown"
Opener = Callable[..., Awaitable[Store]]


def vec(*head: float) -> list[float]:
    return [*head, *[0.0] * (DIMS - len(head))]


def rec(text: str, vector: list[float], *, scope: str = KNOWLEDGE, source: str = "doc.md",
        position: int = 0) -> Record:  # fmt: skip
    return Record(scope=scope, source=source, position=position, start=0, end=len(text),
                  text=text, content_hash=content_hash(source, text), vector=vector,
                  metadata={"n": position})  # fmt: skip


def memory_config(kind: str, connection: str | None, **settings: Any) -> AgentMemoryConfig:
    table = {"table_name": f"mem_{uuid.uuid4().hex[:12]}"}
    return AgentMemoryConfig.model_validate({
        "provider": kind, "connection": connection, "dimensions": DIMS,
        "embedding": {"provider": "dummy"}, "pgvector": table, **settings,
    })  # fmt: skip


@pytest.fixture(params=["sqlite", "pgvector", "memory"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens stores of one kind, all on one file / table / name, closed at the end."""
    kind = request.param
    if kind == "pgvector":
        base = str(request.getfixturevalue("postgres_url"))
        connection = base.replace("postgres@", f"postgres:{PASSWORD}@")  # trust ignores it
    else:
        connection = str(tmp_path / "memory.db") if kind == "sqlite" else uuid.uuid4().hex
    first = memory_config(kind, connection)
    opened: list[Store] = []

    async def open_(**settings: Any) -> Store:
        memory = AgentMemoryConfig.model_validate({**first.model_dump(), **settings})
        store = await open_store(memory, environ={})
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


async def test_add_stores_a_text_once_per_scope(opener: Opener) -> None:
    store = await opener()
    a, b = rec("alpha", vec(1)), rec("beta", vec(0, 1))
    assert await store.add([a, b]) == 2
    assert await store.add([a, b]) == 0
    assert await store.add([a, rec("gamma", vec(0, 0, 1))]) == 1
    assert await store.add([a.model_copy(update={"scope": SESSION})]) == 1
    assert await store.known(KNOWLEDGE, [a.content_hash, "nope", b.content_hash]) == {
        a.content_hash, b.content_hash}  # fmt: skip
    assert await store.known(SESSION, [a.content_hash, b.content_hash]) == {a.content_hash}
    assert (await store.stats()).records == 4


async def test_search_ranks_by_meaning_and_words(opener: Opener) -> None:
    """The nearer vector without the query's words loses to a near one that has them; with
    hybrid search off, the nearer vector wins."""
    store = await opener()
    near = rec("a chunk about something else entirely", vec(0.9, 0.436))
    worded = rec("temporal retries activities", vec(0.8, 0, 0.6), position=1)
    far = rec("unrelated", vec(0, 0, 0, 1), position=2)
    await store.add([near, worded, far])
    hits = await store.search(vec(1), "Temporal retries", scopes=[KNOWLEDGE], k=3)
    assert [h.text for h in hits] == [worded.text, near.text, far.text]
    assert hits[0].score == pytest.approx(0.7 * 0.8 + 0.3, abs=1e-4)
    assert hits[0].similarity == pytest.approx(0.8, abs=1e-4)
    assert hits[0].id == worded.id and hits[0].metadata == {"n": 1}
    assert hits[0].source == "doc.md" and hits[0].position == 1
    plain = await opener(search={"hybrid_search": False})
    hits = await plain.search(vec(1), "Temporal retries", scopes=[KNOWLEDGE], k=2)
    assert [h.text for h in hits] == [near.text, worded.text]
    assert hits[0].score == hits[0].similarity == pytest.approx(0.9, abs=1e-4)


async def test_threshold_drops_weak_hits(opener: Opener) -> None:
    store = await opener()
    await store.add([rec("weak", vec(0.3, 0.954)), rec("strong match", vec(1), position=1)])
    hits = await store.search(vec(1), "match", scopes=[KNOWLEDGE], k=5, threshold=0.5)
    assert [h.text for h in hits] == ["strong match"]
    assert await store.search(vec(1), "match", scopes=[KNOWLEDGE], k=5, threshold=1.01) == []


async def test_scopes_are_isolated_even_when_another_scope_is_nearer(opener: Opener) -> None:
    """Hundreds of knowledge records nearer the query than any session record must not
    crowd the session's records out of a session search (an index that yields the nearest
    vectors, then filters by scope, would return none of them), nor leak into it."""
    store = await opener()
    crowd = [rec(f"knowledge {i}", vec(1, i / 1000), position=i) for i in range(300)]
    mine = [rec(f"turn {i}", vec(-i / 1000, 1), scope=SESSION, position=i) for i in range(300)]
    other = [rec("another session turn", vec(1), scope=session_scope("s-2"))]
    await store.add(crowd + mine + other)
    hits = await store.search(vec(1), "turn", scopes=[SESSION], k=2)
    assert [h.text for h in hits] == ["turn 0", "turn 1"]
    hits = await store.search(vec(-1), "", scopes=[SESSION], k=2)
    assert [h.text for h in hits] == ["turn 299", "turn 298"]
    both = await store.search(vec(1), "", scopes=[KNOWLEDGE, SESSION], k=30)
    assert [h.text for h in both] == [f"knowledge {i}" for i in range(30)]
    words = await store.search(vec(0, 1), "turn", scopes=[SESSION, KNOWLEDGE], k=3)
    assert [h.text for h in words] == ["turn 0", "turn 1", "turn 2"]


async def test_empty_store_and_no_scopes_find_nothing(opener: Opener) -> None:
    store = await opener()
    assert await store.search(vec(1), "anything", scopes=[KNOWLEDGE], k=5) == []
    await store.add([rec("x", vec(1))])
    assert await store.search(vec(1), "x", scopes=[], k=5) == []
    assert await store.search(vec(1), "x", scopes=[SESSION], k=5) == []
    assert await store.recent(SESSION, 5) == []


async def test_recent_is_the_last_turns_oldest_first(opener: Opener) -> None:
    store = await opener()
    turns = [rec(f"turn {i}", vec(1, i), scope=SESSION, position=i * 1000) for i in range(5)]
    await store.add([turns[3], turns[0], turns[4], turns[1], turns[2], rec("doc", vec(1))])
    recent = await store.recent(SESSION, 3)
    assert [h.text for h in recent] == ["turn 2", "turn 3", "turn 4"]
    assert {h.score for h in recent} == {1.0}
    assert [h.text for h in await store.recent(SESSION, 10)] == [f"turn {i}" for i in range(5)]


async def test_stats_count_scopes_and_sources(opener: Opener) -> None:
    store = await opener()
    other = [rec("b", vec(1), source="other.md"), rec("c", vec(1), source="other.md")]
    await store.add([rec("a", vec(1)), *other, rec("d", vec(1), scope=SESSION)])
    stats = await store.stats()
    assert (stats.provider, stats.dimensions, stats.records) == (store.provider, DIMS, 4)
    assert stats.scopes == {KNOWLEDGE: 3, SESSION: 1}
    assert [(s.source, s.scope, s.chunks) for s in stats.sources] == [
        ("doc.md", KNOWLEDGE, 1), ("doc.md", SESSION, 1), ("other.md", KNOWLEDGE, 2)]  # fmt: skip
    assert stats.location and PASSWORD not in stats.location


async def test_forget_by_source_by_scope_and_both(opener: Opener) -> None:
    store = await opener()
    await store.add([rec("a", vec(1)), rec("b", vec(1), source="other.md"),
                     rec("c", vec(1), scope=SESSION), rec("d", vec(1), scope=SESSION,
                     source="other.md")])  # fmt: skip
    assert await store.forget(source="other.md", scope=SESSION) == 1
    assert await store.forget(source="other.md") == 1
    assert await store.forget(scope=SESSION) == 1
    assert await store.forget(scope=SESSION) == 0
    hits = await store.search(vec(1), "", scopes=[KNOWLEDGE, SESSION], k=5)
    assert [h.text for h in hits] == ["a"]
    assert await store.add([rec("c", vec(1), scope=SESSION)]) == 1  # forgotten: new again
    with pytest.raises(ValueError, match="source or a scope"):
        await store.forget()


async def test_a_vector_of_another_length_is_refused(opener: Opener) -> None:
    store = await opener()
    with pytest.raises(MemorySetupError, match=r"a vector of 3 values .* holds 8"):
        await store.add([rec("ok", vec(1)), rec("short", [1.0, 0.0, 0.0])])
    assert (await store.stats()).records == 0  # nothing of the batch was stored
    with pytest.raises(MemorySetupError, match="a vector of 9 values"):
        await store.search([1.0] * 9, "q", scopes=[KNOWLEDGE], k=1)


async def test_reopening_with_another_dimension_is_refused(opener: Opener) -> None:
    store = await opener()
    await store.add([rec("a", vec(1))])
    with pytest.raises(MemorySetupError, match=r"holds 8-dimension vectors.*dimensions = 4"):
        await opener(dimensions=4)
    again = await opener()  # the same dimension still opens, with the records
    assert (await again.stats()).records == 1


async def test_sqlite_file_persists_and_is_where_connection_says(tmp_path: Path) -> None:
    memory = memory_config("sqlite", "${MEMORY_DIR}/deep/er/memory.db")
    environ = {"MEMORY_DIR": str(tmp_path)}
    store = await open_store(memory, environ)
    await store.add([rec("kept", vec(1)), rec("turn", vec(0, 1), scope=SESSION)])
    await store.close()
    assert (tmp_path / "deep/er/memory.db").is_file()
    store = await open_store(memory, environ)
    try:
        stats = await store.stats()
        assert (stats.location, stats.records) == (str(tmp_path / "deep/er/memory.db"), 2)
        assert [h.text for h in await store.search(vec(1), "", scopes=[KNOWLEDGE], k=1)] == [
            "kept"]  # fmt: skip
    finally:
        await store.close()


async def test_sqlite_default_file_and_bad_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store(memory_config("sqlite", None), {})
    await store.close()
    assert (tmp_path / ".agentflow/memory.db").is_file()
    (tmp_path / "junk.db").write_text("this is not a database " * 100)
    with pytest.raises(MemorySetupError, match=r"junk\.db.*not a database"):
        await open_store(memory_config("sqlite", str(tmp_path / "junk.db")), {})
    with pytest.raises(MemorySetupError, match=r"needs \$\{NO_SUCH_DIR\}.*not set"):
        await open_store(memory_config("sqlite", "${NO_SUCH_DIR}/m.db"), {})


# The layout of a store file before the sign codes (agentflow/memory/sqlite_vectors.py).
OLD_SQLITE_SCHEMA = (
    "CREATE TABLE memory_meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE memory_records (id INTEGER PRIMARY KEY, scope TEXT NOT NULL, source TEXT NOT "
    'NULL, position INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT '
    "NOT NULL, content_hash TEXT NOT NULL, metadata TEXT NOT NULL, created REAL NOT NULL, "
    "UNIQUE (scope, content_hash))",
    "CREATE INDEX memory_records_scope_position ON memory_records (scope, position)",
    "CREATE INDEX memory_records_source ON memory_records (source)",
    "CREATE VIRTUAL TABLE memory_vectors USING vec0(scope TEXT PARTITION KEY, "
    "embedding FLOAT[{d}] distance_metric=cosine)",
)


def write_old_sqlite_file(path: Path, dimensions: int, records: Sequence[Record]) -> None:
    """A store file as it was made before the sign codes: vectors in a vec0 table."""
    import sqlite_vec  # type: ignore[import-untyped]

    db = sqlite_module().connect(str(path), isolation_level=None)
    try:
        db.enable_load_extension(True)
        sqlite_vec.load(db)
        for statement in OLD_SQLITE_SCHEMA:
            db.execute(statement.format(d=dimensions))
        db.execute("INSERT INTO memory_meta VALUES ('dimensions', ?)", (str(dimensions),))
        db.execute("BEGIN")
        for r in records:
            cursor = db.execute(
                'INSERT INTO memory_records (scope, source, position, start, "end", text, '
                "content_hash, metadata, created) VALUES (?, ?, ?, ?, ?, ?, ?, '{}', 0)",
                (r.scope, r.source, r.position, r.start, r.end, r.text, r.content_hash),
            )
            vector = struct.pack(f"{dimensions}f", *r.vector)
            db.execute("INSERT INTO memory_vectors (rowid, scope, embedding) VALUES (?, ?, ?)",
                       (cursor.lastrowid, r.scope, vector))  # fmt: skip
        db.execute("COMMIT")
    finally:
        db.close()


def sqlite_rows(path: Path, query: str) -> list[Any]:
    db = sqlite_module().connect(str(path))
    try:
        return list(db.execute(query))
    finally:
        db.close()


WIDE = 384  # dimensions of the large-scope tests (a common small embedding size)


@functools.cache
def large_corpus() -> list[Record]:
    """More records than a scope searched exactly holds: 30 words each from 5,000 random ones,
    embedded by the dummy embedder (sparse vectors, the hard case for sign codes)."""
    rng = random.Random(20)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9)))
             for _ in range(5000)]  # fmt: skip
    texts = [" ".join(rng.choices(words, k=30)) for _ in range(sqlite_vectors.EXACT_ROWS + 2000)]
    return [rec(text, dummy_vector(text, WIDE), position=i) for i, text in enumerate(texts)]


@pytest.mark.parametrize("made", ["added", "migrated"])
async def test_sqlite_large_scope_finds_what_an_exact_search_finds(
    made: str, tmp_path: Path
) -> None:
    """Past EXACT_ROWS records a scope is searched through its sign codes, then rescored
    exactly: the top 10 nearly match a comparison with every record, the record a query was
    taken from comes first, another scope stays out, and the exact path (here forced) matches
    it entirely. A file made before the codes is migrated when opened and searched the same."""
    records, path = large_corpus(), tmp_path / "memory.db"
    turns = [rec(f"turn {i}", dummy_vector(f"turn {i}", WIDE), scope=SESSION, position=i)
             for i in range(3)]  # fmt: skip
    if made == "migrated":
        write_old_sqlite_file(path, WIDE, records + turns)
    memory = AgentMemoryConfig.model_validate({
        "provider": "sqlite", "connection": str(path), "dimensions": WIDE,
        "embedding": {"provider": "dummy"}, "search": {"hybrid_search": False}})  # fmt: skip
    store = await open_store(memory, {})
    try:
        if made == "added":
            assert await store.add(records + turns) == len(records) + 3
        rng, overlaps = random.Random(7), []
        for source in rng.sample(records, 8):
            words = source.text.split()
            start = rng.randrange(len(words) - 8)
            query = " ".join(words[start : start + 8])
            vector = dummy_vector(query, WIDE)
            similarity = {r.id: sum(map(operator.mul, r.vector, vector)) for r in records}
            exact = sorted(similarity, key=lambda rid: -similarity[rid])[:10]
            hits = await store.search(vector, query, scopes=[KNOWLEDGE], k=10)
            assert hits[0].id == source.id == exact[0]
            overlaps.append(len({h.id for h in hits} & set(exact)))
        assert sum(overlaps) / len(overlaps) >= 9, overlaps
        mine = await store.search(dummy_vector("turn", WIDE), "", scopes=[SESSION], k=10)
        assert sorted(h.text for h in mine) == ["turn 0", "turn 1", "turn 2"]
        store.exact_rows = len(records)  # type: ignore[attr-defined]
        assert [h.id for h in await store.search(vector, query, scopes=[KNOWLEDGE], k=10)] == exact
    finally:
        await store.close()
    assert sqlite_rows(path, "SELECT name FROM sqlite_master WHERE name = 'memory_vectors'") == []


async def test_sqlite_file_made_before_the_codes_is_migrated_when_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old file's vectors move into the new tables a batch a transaction: a migration
    interrupted (here the 4th code fails, in the 2nd batch of 2) goes on from the last batch
    when the file is opened again, and the store then works as any other."""
    path = tmp_path / "old.db"
    old = [rec("alpha", vec(1)), rec("beta", vec(0, 1), position=1),
           rec("gamma", vec(0, 0, 1), position=2), rec("turn", vec(1), scope=SESSION)]  # fmt: skip
    write_old_sqlite_file(path, DIMS, old)
    made: list[bytes] = []
    sign_code = sqlite_vectors.sign_code

    def failing(vector: Sequence[float]) -> bytes:
        if len(made) == 3:
            raise RuntimeError("interrupted")
        made.append(sign_code(vector))
        return made[-1]

    with monkeypatch.context() as patch:
        patch.setattr(sqlite_vectors, "_MIGRATION_BATCH", 2)
        patch.setattr(sqlite_vectors, "sign_code", failing)
        with pytest.raises(RuntimeError, match="interrupted"):
            await open_store(memory_config("sqlite", str(path)), {})
    assert sqlite_rows(path, "SELECT id FROM memory_embeddings") == [(1,), (2,)]
    assert sqlite_rows(path, "SELECT value FROM memory_meta WHERE key = 'migrated'") == [("2",)]
    store = await open_store(memory_config("sqlite", str(path)), {})
    try:
        assert sqlite_rows(path, "SELECT count(*) FROM memory_embeddings") == [(4,)]
        hits = await store.search(vec(1), "", scopes=[KNOWLEDGE], k=3)
        assert [h.text for h in hits] == ["alpha", "beta", "gamma"]
        assert hits[0].similarity == pytest.approx(1.0)
        assert [h.text for h in await store.search(vec(1), "", scopes=[SESSION], k=3)] == ["turn"]
        assert await store.add([rec("delta", vec(0.9, 0.1), position=3)]) == 1
        hits = await store.search(vec(1), "", scopes=[KNOWLEDGE], k=2)
        assert [h.text for h in hits] == ["alpha", "delta"]
        assert await store.forget(scope=SESSION) == 1
        assert (await store.stats()).records == 4
    finally:
        await store.close()
    assert sqlite_rows(path, "SELECT key FROM memory_meta") == [("dimensions",)]
    assert sqlite_rows(path, "SELECT name FROM sqlite_master WHERE name = 'memory_vectors'") == []


async def test_in_process_stores_are_shared_by_name() -> None:
    name = uuid.uuid4().hex
    one = await open_store(memory_config("memory", name), {})
    await one.add([rec("shared", vec(1))])
    two = await open_store(memory_config("memory", name), {})
    assert (await two.stats()).records == 1
    other = await open_store(memory_config("memory", uuid.uuid4().hex), {})
    assert (await other.stats()).records == 0
    assert "not durable" in (await two.stats()).location


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on: bound (so no other process takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def test_postgres_down_is_unavailable_and_hides_the_password(closed_port: int) -> None:
    url = f"postgresql://agent:{PASSWORD}@127.0.0.1:{closed_port}/memory"
    with pytest.raises(MemoryUnavailable) as raised:
        await open_store(memory_config("pgvector", url), {})
    said = str(raised.value)
    assert f"PostgreSQL at 127.0.0.1:{closed_port} (database memory) is not reachable" in said
    assert "Connection refused" in said
    assert PASSWORD not in said and "\n" not in said


async def test_postgres_connection_settings_that_a_retry_cannot_fix(postgres_url: str) -> None:
    with pytest.raises(MemorySetupError, match=r"needs \$\{MEMORY_DSN\}, which is not set"):
        await open_store(memory_config("pgvector", "${MEMORY_DSN}"), {})
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(MemorySetupError, match='database "no_such_database" does not exist'):
        await open_store(memory_config("pgvector", missing), {})
    with pytest.raises(MemorySetupError, match="not a PostgreSQL connection string"):
        await open_store(memory_config("pgvector", "host=h nonsense"), {})
    with pytest.raises(MemorySetupError, match="is not a memory table"):
        await open_store(memory_config("pgvector", postgres_url, pgvector={
            "table_name": "pg_class"}), {})  # fmt: skip


async def test_postgres_without_pgvector_rights_says_how_to_install(
    postgres_server: PostgresServer,
) -> None:
    """A database where the extension is not created yet, reached by a role that may not
    create it (pgvector is not a trusted extension): the server's reason and the fix."""
    name = f"noext_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN")
    with postgres_server.scratch_database(name):
        with psycopg.connect(postgres_server.url(name), autocommit=True) as admin:
            admin.execute(f"GRANT ALL ON SCHEMA public TO {name}")
        url = postgres_server.url(name, user=name)
        with pytest.raises(MemorySetupError) as raised:
            await open_store(memory_config("pgvector", url), {})
    said = str(raised.value)
    assert f"pgvector extension is not installed in database {name}" in said
    assert 'permission denied to create extension "vector"' in said
    assert "apt install postgresql-" in said and "-pgvector" in said and "\n" not in said


async def test_postgres_reconnects_after_losing_its_connection(postgres_url: str) -> None:
    store = await open_store(memory_config("pgvector", postgres_url), {})
    try:
        await store.add([rec("before", vec(1))])
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(MemoryUnavailable, match=r"127\.0\.0\.1"):
            await store.stats()
        assert await store.add([rec("after", vec(0, 1))]) == 1
        assert (await store.stats()).records == 2
    finally:
        await store.close()


async def test_postgres_index_search_is_not_crowded_out(postgres_url: str) -> None:
    """With statistics, the planner answers a search of a big scope through the HNSW index,
    which yields the ``ef_search`` nearest vectors before the scope filter: all of another
    scope here. The search still finds the scope's own records."""
    memory = memory_config("pgvector", postgres_url)
    store = await open_store(memory, {})
    try:
        crowd = [rec(f"knowledge {i}", vec(1, i / 1000), position=i) for i in range(300)]
        mine = [rec(f"turn {i}", vec(-i / 1000, 1), scope=SESSION, position=i) for i in range(300)]
        await store.add(crowd + mine)
        table = memory.pgvector.table_name
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"ANALYZE {table}")
            admin.execute("SET hnsw.ef_search = 40")
            query = (f"SELECT text FROM {table} WHERE scope = ANY(%s) "
                     "ORDER BY embedding <=> %s::vector LIMIT 20")  # fmt: skip
            args = [[SESSION], str(vec(1))]
            plan = " ".join(r[0] for r in admin.execute(f"EXPLAIN {query}", args).fetchall())
            assert "hnsw" in plan, plan
            assert admin.execute(query, args).fetchall() == []  # what the index alone gives
        hits = await store.search(vec(1), "turn", scopes=[SESSION], k=2)
        assert [h.text for h in hits] == ["turn 0", "turn 1"]
    finally:
        await store.close()


async def test_postgres_analyzes_the_table_after_many_new_records(postgres_url: str) -> None:
    """The add that makes 1,000 records new since the last analysis (in one call or several)
    runs ANALYZE, so the planner walks the HNSW index at once; smaller adds do not."""
    memory = memory_config("pgvector", postgres_url)
    table = memory.pgvector.table_name
    store = await open_store(memory, {})

    def analyses() -> int:  # ANALYZE commands run on the table (autovacuum's are apart)
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            row = admin.execute("SELECT analyze_count FROM pg_stat_user_tables "
                                "WHERE relname = %s", [table]).fetchone()  # fmt: skip
        return int(row[0]) if row else 0

    try:
        crowd = [rec(f"knowledge {i}", vec(1, i / 3000, (i % 7) / 10), position=i)
                 for i in range(3000)]  # fmt: skip
        for at in (0, 400):
            assert await store.add(crowd[at : at + 400]) == 400
        assert analyses() == 0
        assert await store.add(crowd[800:1200]) == 400
        assert analyses() == 1  # 1,200 new: more than 1,000 and a fifth of the table
        assert await store.add(crowd[1200:2900]) == 1700
        assert analyses() == 2
        assert await store.add(crowd[2900:]) == 100
        assert analyses() == 2
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            query = (f"EXPLAIN SELECT text FROM {table} WHERE scope = ANY(%s) "
                     "ORDER BY embedding <=> %s::vector LIMIT 40")  # fmt: skip
            plan = " ".join(r[0] for r in admin.execute(query, [[KNOWLEDGE], str(vec(1))]))
            assert "hnsw" in plan, plan
        hits = await store.search(vec(1), "", scopes=[KNOWLEDGE], k=2)
        assert [h.text for h in hits] == ["knowledge 0", "knowledge 7"]
    finally:
        await store.close()


# Chunking: every store holds what chunk_text cut, so its promises are checked on any text.
TEXTS = st.text(alphabet=st.sampled_from(list("abcde .,\n\t")), max_size=600) | st.text(
    max_size=300
)


@given(text=TEXTS, size=st.integers(1, 150), share=st.floats(0, 0.95))
@settings(max_examples=400, deadline=None)
def test_chunks_cover_the_text_within_size_and_overlap(text: str, size: int, share: float) -> None:
    overlap = min(int(size * share), size - 1)
    chunks = chunk_text(text, size, overlap)
    assert chunks == chunk_text(text, size, overlap)  # deterministic
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert (chunks == []) == (text.strip() == "")
    covered: set[int] = set()
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end] == chunk.text.strip() != ""
        assert len(chunk.text) <= size
        covered.update(range(chunk.start, chunk.end))
    assert {i for i, ch in enumerate(text) if not ch.isspace()} <= covered
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start  # each chunk moves forward
        assert after.start >= before.end - overlap  # never more overlap than asked


def test_chunks_end_at_paragraphs_lines_and_words() -> None:
    words = " ".join(f"w{i:03}" for i in range(200))  # 5-character words
    para = "p" * 84
    chunks = chunk_text(f"{para}\n\n{words}", 100, 0)
    assert chunks[0].text == para  # the paragraph break at 84 is in the last fifth
    chunks = chunk_text(f"{'x ' * 42}\n{words}", 100, 0)
    assert chunks[0].end == 84 - 1  # the line break, not the later spaces
    chunks = chunk_text(words, 100, 20)
    assert all(c.text.startswith("w") and len(c.text.split()[-1]) == 4 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert 14 <= before.end - after.start <= 20  # about `overlap`, from a word's start
    assert [c.text for c in chunk_text("z" * 250, 100, 10)] == ["z" * 100, "z" * 100, "z" * 70]
    assert chunk_text(" \n\t ", 10, 2) == [] == chunk_text("", 10, 2)
    with pytest.raises(ValueError, match="smaller than the size"):
        chunk_text("text", 10, 10)


def test_keyword_share_cosine_and_hybrid_score() -> None:
    assert keyword_share("Temporal retries!", "temporal RETRIES, activities") == 1.0
    assert keyword_share("temporal retries", "temporality retries") == 0.5  # words, not parts
    assert keyword_share("the the cat", "a cat") == 0.5  # distinct words
    assert keyword_share("?!", "anything") == 0.0
    assert cosine([1, 0], [0, 2]) == 0.0 and cosine([1, 1], [2, 2]) == pytest.approx(1.0)
    assert cosine([0, 0], [1, 0]) == 0.0
    with pytest.raises(ValueError, match="2 and 3"):
        cosine([1, 0], [1, 0, 0])
    search = SearchConfig(keyword_weight=0.4, semantic_weight=0.6)
    assert hybrid_score(0.5, "cat", "a cat", search) == pytest.approx(0.6 * 0.5 + 0.4)
    plain = SearchConfig(hybrid_search=False)
    assert hybrid_score(0.5, "cat", "a cat", plain) == 0.5
