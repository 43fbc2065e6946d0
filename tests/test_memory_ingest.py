"""Knowledge-base ingestion end to end on a real dev server: files and directories read as the
worker will, stored once however often they are ingested, a worker SIGKILLed mid-file, bad
input refused before anything starts, and ``agentflow memory ingest|search|stats|forget``."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from agentflow.client.memory import IngestHandle, ingest, plan_ingest, start_ingest
from agentflow.config import load_config
from agentflow.config.memory import DocumentsConfig
from agentflow.errors import ConfigError
from agentflow.memory import MemorySetupError, chunk_text, search, stats
from agentflow.memory.documents import expand_paths, parse_size, read_document
from agentflow.models.memory import IngestProgress, IngestRequest, IngestResult
from agentflow.workflows.ingest import IngestWorkflow
from tests._worker_process import WorkerProcess
from tests.conftest import cli
from tests.embeddings_server import FakeEmbeddings, Hold, Vectors
from tests.memory_goldens import MEMORY_HISTORIES, ingest_worker, memory_flow, minimal_pdf

DOCS = DocumentsConfig()
PARAGRAPH = "Paragraph {n} tells of harbour number {n}, its {n} boats and the keeper of light {n}."


def rows(db: Path, source: str | None = None) -> int:
    with sqlite3.connect(db) as conn:
        if source is None:
            return int(conn.execute("SELECT count(*) FROM memory_records").fetchone()[0])
        query = "SELECT count(*), count(DISTINCT content_hash) FROM memory_records WHERE source=?"
        total, distinct = conn.execute(query, (source,)).fetchone()
        assert total == distinct
        return int(total)


def chunks_of(path: Path) -> int:
    return len(chunk_text(path.read_text(), 200, 40))


# --- documents ------------------------------------------------------------------------------


def test_documents_are_read_by_kind_and_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# Notes\nhello")
    (tmp_path / "main.rs").write_text("fn main() {}")
    (tmp_path / "odd.xyz").write_text("text after all")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    (tmp_path / "latin.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "doc.pdf").write_bytes(minimal_pdf("Lighthouse keepers log the tides"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really")
    assert read_document(tmp_path / "notes.md", DOCS) == "# Notes\nhello"
    assert read_document(tmp_path / "main.rs", DOCS) == "fn main() {}"
    assert read_document(tmp_path / "odd.xyz", DOCS) == "text after all"
    assert "Lighthouse keepers log the tides" in read_document(tmp_path / "doc.pdf", DOCS)
    refusals = {"image.png": "is not text (binary", "latin.txt": "is not UTF-8 text",
                "broken.pdf": "is not a readable PDF", "missing.txt": "does not exist",
                ".": "is a directory"}  # fmt: skip
    for name, reason in refusals.items():
        with pytest.raises(MemorySetupError) as err:
            read_document(tmp_path / name, DOCS)
        assert reason in str(err.value) and str(tmp_path) in str(err.value)
        assert "\n" not in str(err.value)
    small = DocumentsConfig(max_file_size="10B", supported_types=["md", "pdf"])
    with pytest.raises(MemorySetupError, match=r"over .*max_file_size"):
        read_document(tmp_path / "notes.md", small)
    with pytest.raises(MemorySetupError, match="code files are not ingested"):
        read_document(tmp_path / "main.rs", small)
    assert [parse_size(s) for s in ("10MB", "512KB", "1.5 kb", "7B")] == [10 << 20, 512 << 10,
                                                                          1536, 7]  # fmt: skip
    for bad in ("10", "ten MB", "0MB", "-1KB", "10 XB"):
        with pytest.raises(ConfigError, match="max_file_size"):
            parse_size(bad)


def test_expand_paths_walks_directories_sorted_without_hidden_ones(tmp_path: Path) -> None:
    for name in ("b/z.md", "b/a.md", "a.txt", ".git/config", ".agentflow/x.md", "b/.env"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = expand_paths([tmp_path, tmp_path / "a.txt", tmp_path / "b" / "a.md"])
    assert found == [tmp_path / "a.txt", tmp_path / "b/a.md", tmp_path / "b/z.md"]
    with pytest.raises(ConfigError, match=r"nope\.md: no such file"):
        expand_paths([tmp_path / "nope.md"])


# --- ingestion ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "pgvector"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The [agent_memory] keys of a store of each kind (pgvector: a real PostgreSQL)."""
    if request.param == "sqlite":
        return {}  # memory_flow's own: a sqlite file in tmp_path
    url = str(request.getfixturevalue("postgres_url"))
    return {"provider": "pgvector", "connection": url}


async def test_ingest_stores_each_chunk_once_and_again_skips_all(
    client: Client, tmp_path: Path, store: dict[str, str]
) -> None:
    path = memory_flow(tmp_path, memory=store)
    if store:  # a table of its own in the shared database
        path.write_text(
            path.read_text()
            + f'\n[agent_memory.pgvector]\ntable_name = "i_{uuid.uuid4().hex[:10]}"\n'
        )
    config = load_config(path)
    docs = tmp_path / "docs"
    (docs / "deep").mkdir(parents=True)
    (docs / "guide.md").write_text("\n\n".join(PARAGRAPH.format(n=n) for n in range(30)))
    (docs / "deep" / "code.py").write_text("def tide():\n    return 'the moon pulls the sea'\n")
    (docs / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0")  # in a directory: left out
    (docs / "manual.pdf").write_bytes(minimal_pdf("Keepers trim the wick at dusk"))
    files = [docs / "deep" / "code.py", docs / "guide.md", docs / "manual.pdf"]
    async with ingest_worker(client, config):
        handle = await start_ingest(client, config, [docs])
        assert [f.path for f in handle.files] == [str(f) for f in files]
        assert [f.path for f in handle.left_out] == [str(docs / "logo.png")]
        seen: list[IngestProgress] = []
        first = await handle.result(seen.append)
        final = await handle.progress()  # the query answers after the end too
        again = await ingest(client, config, [docs])
    expected = chunks_of(files[0]) + chunks_of(files[1]) + 1
    assert isinstance(again, IngestResult)
    counts = [(r.files_done, r.chunks, r.stored, r.skipped) for r in (first, again)]
    assert counts == [(3, expected, expected, 0), (3, expected, 0, expected)]
    assert final.files_done == 3 and final.current == [] and final.stored == expected
    assert all(p.files_total == 3 for p in seen)
    assert (await stats(config)).records == expected
    hits = await search(config, "keepers trim the wick", k=1)
    assert hits[0].source == str(docs / "manual.pdf")


async def test_the_same_files_join_the_running_ingestion(client: Client, tmp_path: Path) -> None:
    config = load_config(memory_flow(tmp_path))
    doc = tmp_path / "doc.md"
    doc.write_text("Once is enough.")
    first = await start_ingest(client, config, [doc])  # no worker yet: it waits
    second = await start_ingest(client, config, [doc])
    assert second.workflow_id == first.workflow_id
    assert (await second.handle.describe()).run_id == (await first.handle.describe()).run_id
    async with ingest_worker(client, config):
        result = await second.result()
    assert (result.files_done, result.stored) == (1, 1)


async def test_a_long_ingestion_continues_as_new_with_its_totals(
    client: Client, tmp_path: Path
) -> None:
    config = load_config(memory_flow(tmp_path))
    for n in range(5):
        (tmp_path / f"{n}.md").write_text(PARAGRAPH.format(n=n))
    plan = await plan_ingest(config, [tmp_path / f"{n}.md" for n in range(5)])
    request = IngestRequest(flow=config.name, files=plan.files, concurrency=2, files_per_run=2)
    async with ingest_worker(client, config) as queue:
        handle = await client.start_workflow(
            IngestWorkflow.run, request, id=f"long-{uuid.uuid4().hex}", task_queue=queue
        )
        result = await handle.result()
        latest = client.get_workflow_handle(handle.id)
        progress = await latest.query(IngestWorkflow.ingest_progress)
    assert (result.files_total, result.files_done, result.stored, result.skipped) == (5, 5, 5, 0)
    assert (progress.files_done, progress.stored) == (5, 5)
    assert (await latest.describe()).run_id != handle.first_execution_run_id  # 3 runs


async def test_bad_input_is_refused_before_anything_starts(client: Client, tmp_path: Path) -> None:
    config = load_config(memory_flow(tmp_path, documents={"max_file_size": "1KB"}))
    (tmp_path / "big.txt").write_text("x" * 2000)
    (tmp_path / "blob.bin").write_bytes(b"\0\1\2")
    cases = {tmp_path / "gone.md": "no such file", tmp_path / "blob.bin": "is not text",
             tmp_path / "big.txt": "over [agent_memory.documents] max_file_size (1KB)"}  # fmt: skip
    for path, reason in cases.items():
        with pytest.raises(ConfigError, match=re.escape(reason)):
            await start_ingest(client, config, [path])
    plain = load_config(memory_flow(tmp_path)).model_copy(update={"agent_memory": None})
    with pytest.raises(ConfigError, match="has no agent memory"):
        await start_ingest(client, plain, [tmp_path / "big.txt"])


async def test_a_file_changed_after_hashing_fails_alone(client: Client, tmp_path: Path) -> None:
    config = load_config(
        memory_flow(tmp_path, memory={"provider": "memory", "connection": uuid.uuid4().hex})
    )
    (tmp_path / "stays.md").write_text("This one stays as it was.")
    (tmp_path / "moves.md").write_text("This one changes.")
    handle = await start_ingest(client, config, [tmp_path / "stays.md", tmp_path / "moves.md"])
    (tmp_path / "moves.md").write_text("Changed before any worker read it.")
    async with ingest_worker(client, config):  # in-process: the "memory" store is this one
        result = await handle.result()
        hits = await search(config, "stays as it was")
    assert (result.files_done, result.stored) == (2, 1)
    [failure] = result.failures
    assert failure.path == str(tmp_path / "moves.md")
    assert "changed since it was checked for ingestion" in failure.error
    assert [h.source for h in hits] == [str(tmp_path / "stays.md")]


# --- the CLI --------------------------------------------------------------------------------


async def test_memory_cli(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = memory_flow(cli_env)
    config = load_config(path)
    docs = cli_env / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("The moon pulls the sea twice a day.")
    (docs / "ships.txt").write_text("Ships keep clear of the rocks.")
    (cli_env / "blob.bin").write_bytes(b"\0\1")
    async with ingest_worker(client, config):
        code, out, err = await cli(capsys, "memory", "ingest", "docs", "--config", str(path))
    assert code == 0, err
    assert out.splitlines()[-1] == (f"ingested 2 files into the memory of flow {config.name!r}:"
                                    " 2 chunks, 2 stored, 0 already stored")  # fmt: skip
    assert "warning" not in err
    code, out, _ = await cli(capsys, "memory", "search", "moon sea", "--config", str(path))
    assert code == 0 and out.splitlines()[0].split()[2] == f"{docs / 'tides.md'}:0"
    assert out.splitlines()[0].endswith("The moon pulls the sea twice a day.")
    code, out, _ = await cli(capsys, "memory", "search", "ships", "--limit", "1", "--json",
                             "--config", str(path))  # fmt: skip
    [hit] = [json.loads(line) for line in out.splitlines()]
    assert (hit["rank"], hit["source"]) == (1, str(docs / "ships.txt"))
    code, out, _ = await cli(capsys, "memory", "stats", "--json", "--config", str(path))
    body = json.loads(out)
    assert (body["provider"], body["records"], body["scopes"]) == ("sqlite", 2, {"knowledge": 2})
    code, out, _ = await cli(capsys, "memory", "forget", "docs/tides.md", "--config", str(path))
    assert (code, out.strip()) == (0, f"forgot 1 record of {docs / 'tides.md'}")
    code, out, _ = await cli(capsys, "memory", "stats", "--config", str(path))
    assert "1 records" in out.splitlines()[0] and str(docs / "ships.txt") in out
    bad = {
        ("ingest", "nope.md"): "nope.md: no such file",
        ("ingest", "blob.bin"): "is not text",
        ("search", "x", "--limit", "0"): "--limit",
    }
    for argv, reason in bad.items():
        code, _, err = await cli(capsys, "memory", *argv, "--config", str(path))
        assert code == 2 and reason in err and len(err.splitlines()) == 1, err
    (cli_env / "plain.toml").write_text(path.read_text().split("[agent_memory]")[0])
    code, _, err = await cli(capsys, "memory", "stats", "--config", "plain.toml")
    assert code == 2 and "has no agent memory" in err


# --- a worker killed mid-file ---------------------------------------------------------------


@pytest.fixture
def embeddings() -> Iterator[FakeEmbeddings]:
    """Embeddings that answer 10 requests, then hold the 11th until ``release``: the ingestion
    stops mid-file at a known chunk, whatever the machine's speed."""
    with FakeEmbeddings(dimensions=64) as fake:
        fake.script = [Vectors(64) for _ in range(10)] + [Hold()]
        yield fake
    assert not fake.invalid, fake.invalid


async def until_stored(handle: IngestHandle, count: int) -> IngestProgress:
    async with asyncio.timeout(60):
        while (progress := await handle.progress()).live().stored < count:
            await asyncio.sleep(0.1)
    return progress


async def test_sigkilled_worker_resumes_the_file_and_stores_each_chunk_once(
    client: Client, tmp_path: Path, embeddings: FakeEmbeddings
) -> None:
    path = memory_flow(tmp_path, embedding={
        "provider": "openai-compatible", "base_url": f"{embeddings.root}/v1", "model": "fake-embed",
        "max_batch_size": 1, "cache_embeddings": False})  # fmt: skip
    config = load_config(path)
    doc = tmp_path / "harbours.md"
    doc.write_text("\n\n".join(PARAGRAPH.format(n=n) for n in range(60)))
    chunks = chunks_of(doc)
    queue = f"ingest-crash-{uuid.uuid4().hex[:8]}"
    address = client.service_client.config.target_host
    log = tmp_path / "worker.log"
    first = WorkerProcess(path, queue, address, log).start()
    try:
        handle = await start_ingest(client, config, [doc], task_queue=queue,
                                    heartbeat_timeout_seconds=3)  # fmt: skip
        progress = await until_stored(handle, 10)  # 10 embedded and stored; the 11th is held
        assert progress.current == [str(doc)] and progress.running[0].chunks == chunks
    finally:
        first.kill()
    embeddings.release.set()
    with WorkerProcess(path, queue, address, log):
        result = await asyncio.wait_for(handle.result(), timeout=90)
    counts = (result.chunks, result.stored, result.skipped, result.failures)
    assert counts == (chunks, chunks, 0, [])
    assert rows(tmp_path / "memory.db", str(doc)) == chunks
    # Each chunk was embedded once, but for the one in flight when the worker died.
    assert len(embeddings.requests) == chunks + 1
    assert (await stats(config)).records == chunks


# --- replay ---------------------------------------------------------------------------------


async def test_golden_ingest_history_replays() -> None:
    path = MEMORY_HISTORIES / "memory_ingest.json"
    history = WorkflowHistory.from_json("golden-memory-ingest", json.loads(path.read_text()))
    replayer = Replayer(workflows=[IngestWorkflow], data_converter=pydantic_data_converter)
    assert (await replayer.replay_workflow(history)).replay_failure is None
