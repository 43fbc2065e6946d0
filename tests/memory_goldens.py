"""What the memory ingestion tests share: a flow with ``[agent_memory]`` written to a file, an
in-process worker that serves ingestions, and the golden histories kept in
tests/histories/memory/: an ingestion (two files stored, one that changed after the client
hashed it; replayed by tests/test_memory_ingest.py) and a memory-enabled agent that recalls and
remembers (replayed by tests/test_memory_rag.py). Recorded by
``python -m tests.record_histories memory_ingest memory_recall``."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

from agentflow import memory
from agentflow.activities.memory_ingest import IngestActivities
from agentflow.activities.registry import AgentRegistry
from agentflow.client.memory import start_ingest
from agentflow.client.runner import Runner
from agentflow.client.visibility import has_workers
from agentflow.config import FlowConfig, load_config
from agentflow.workflows.ingest import IngestWorkflow
from tests.conftest import REPO, running_worker

MEMORY_HISTORIES = Path(__file__).parent / "histories" / "memory"
MEMORY_GOLDENS = ("memory_ingest", "memory_recall")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def memory_flow(
    directory: Path,
    name: str | None = None,
    memory: dict[str, Any] | None = None,
    embedding: dict[str, Any] | None = None,
    documents: dict[str, Any] | None = None,
) -> Path:
    """An agentflow.toml in ``directory`` of a flow (its own name, so its own task queue)
    with a sqlite memory in ``directory`` and dummy embeddings, unless the tables say else."""
    name = name or f"mem-{uuid.uuid4().hex[:8]}"
    tables = {
        "agent_memory": {"provider": "sqlite", "connection": str(directory / "memory.db"),
                         "dimensions": 64, "chunk_size": 200, "chunk_overlap": 40,
                         **(memory or {})},
        "agent_memory.embedding": {"provider": "dummy", **(embedding or {})},
        "agent_memory.documents": documents or {},
    }  # fmt: skip
    lines = [f'[agent_flow]\nname = "{name}"\n',
             '[orchestration]\nmode = "sequential"\nsequential_agents = ["a"]\n',
             '[agents.a]\nhandler = "tests.agents:record"\n']  # fmt: skip
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path = directory / "agentflow.toml"
    path.write_text("\n".join(lines))
    return path


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica, written by hand (pypdf writes no text)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]  # fmt: skip
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)  # fmt: skip


@contextlib.asynccontextmanager
async def ingest_worker(
    client: Client, config: FlowConfig, task_queue: str | None = None
) -> AsyncIterator[str]:
    """A worker serving ingestions of ``config`` (on its own task queue unless given), polling
    before this yields the queue."""
    queue = task_queue or config.task_queue
    registry = AgentRegistry.from_configs([(config, REPO)])
    worker = Worker(client, task_queue=queue, workflows=[IngestWorkflow],
                    activities=[IngestActivities(registry).ingest_file])  # fmt: skip
    async with worker:
        while not await has_workers(client, queue):
            await asyncio.sleep(0.05)
        yield queue


async def record_memory_goldens(client: Client) -> dict[str, WorkflowHistory]:
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        config = load_config(memory_flow(directory, name="golden-memory"))
        docs = directory / "docs"
        docs.mkdir()
        (docs / "a.md").write_text("# Tides\n\nThe moon pulls the sea. " * 20)
        (docs / "b.txt").write_text("Lighthouses warn ships of rocks near the shore.\n" * 10)
        (docs / "c.txt").write_text("This file changes after the client hashed it.")
        # No worker yet: the ingestion waits, and c.txt changes before any worker reads it.
        handle = await start_ingest(client, config, [docs])
        (docs / "c.txt").write_text("Changed.")
        async with ingest_worker(client, config):
            result = await handle.result()
            assert result.files_failed == 1 and result.stored > 0, result
            history = await handle.handle.fetch_history()
    MEMORY_HISTORIES.mkdir(exist_ok=True)
    return {"memory/memory_ingest": history, "memory/memory_recall": await _recall(client)}


async def _recall(client: Client) -> WorkflowHistory:
    """A run with a session id whose memory-enabled agent recalls an ingested note, then
    remembers its turn."""
    with tempfile.TemporaryDirectory() as temp:
        path = memory_flow(Path(temp), name="golden-recall")
        text = path.read_text().replace('handler = "tests.agents:record"',
                                        'handler = "tests.memory_agents:lookup"\n'
                                        "memory_enabled = true")  # fmt: skip
        path.write_text(text)
        config = load_config(path)
        async with memory.open_memory(config) as (settings, store, embedder):
            note = "The lighthouse keeper rings the bell at dusk."
            await memory.store_text(settings, store, embedder, source="notes.md", text=note)
        async with running_worker(client, config) as queue:
            handle = await Runner(config, client, queue).start(
                {"message": "when is the bell rung?"}, workflow_id="golden-memory-recall",
                session_id="golden")  # fmt: skip
            result = await handle.result()
            assert result.state.data["recalled"], result
            return await handle.handle.fetch_history()
