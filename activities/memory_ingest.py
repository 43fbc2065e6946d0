"""The ingestion of one file or web page into a flow's knowledge base (``memory_ingest_file``),
on the worker that holds the flow's ``[agent_memory]`` settings (never in workflow input).

The file is read again here and must still have the bytes the client hashed: what is stored is
what was asked for. A web page is fetched here, as it is now (agentflow/memory/web.py). The
text is chunked, embedded and stored by ``agentflow.memory.store_text``, batch by batch, with a
heartbeat after each batch carrying the file's progress; a retry after a crash starts from
those details (its counts), and ``store_text`` embeds only the chunks the store does not hold
yet, so no chunk is embedded or stored twice.

Failures: the store or embedding service down, or a page's server (MemoryUnavailable), is
retried by Temporal, no sooner than a ``Retry-After``; a file that is gone, changed, not text,
too big, or a store that refuses it (MemorySetupError, ConfigError) fails the file at once
with the reason in one line.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from agentflow.activities.heartbeat import heartbeating
from agentflow.activities.registry import AgentRegistry
from agentflow.config import FlowConfig
from agentflow.config.memory import DocumentsConfig
from agentflow.errors import ConfigError
from agentflow.memory import (
    Hit,
    MemorySetupError,
    MemoryStats,
    MemoryUnavailable,
    Record,
    Store,
    memory_of,
    open_memory,
    store_text,
)
from agentflow.memory.documents import document_type, read_with_hash
from agentflow.memory.web import fetch_page, is_url
from agentflow.models.memory import FileProgress, FileRequest, IngestFile
from agentflow.names import MEMORY_INGEST_FILE


class IngestActivities:
    """The ingest activity, reading each flow's memory settings from the worker's registry."""

    def __init__(self, registry: AgentRegistry) -> None:
        self.registry = registry

    @activity.defn(name=MEMORY_INGEST_FILE)
    async def ingest_file(self, request: FileRequest) -> FileProgress:
        config = self.registry.configs.get(request.flow)
        if config is None:
            served = ", ".join(sorted(self.registry.configs)) or "none"
            raise ApplicationError(
                f"this worker does not serve flow {request.flow!r} (it serves: {served}); "
                "start the flow's worker with its agentflow.toml",
                type="ConfigError", non_retryable=True,
            )  # fmt: skip
        try:
            return await ingest(config, request.file)
        except MemoryUnavailable as err:
            delay = None if err.retry_after is None else timedelta(seconds=err.retry_after)
            raise ApplicationError(str(err), type="MemoryUnavailable",
                                   next_retry_delay=delay) from err  # fmt: skip
        except (MemorySetupError, ConfigError) as err:
            raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from err


async def ingest(config: FlowConfig, file: IngestFile) -> FileProgress:
    """Store ``file``'s chunks in the flow's knowledge base; its counts (all attempts')."""
    memory = memory_of(config)
    progress = _Progress(file.path, _earlier(file.path))
    async with heartbeating(activity.info().heartbeat_timeout, progress.beat):
        if is_url(file.path):  # a web page: fetched here (agentflow/memory/web.py)
            text, digest, kind = await fetch_page(file.path, memory.documents)
            where = {"url": file.path}
        else:
            text, digest = await _read(file, memory.documents)
            kind, where = document_type(Path(file.path)), {"file": Path(file.path).name}
        metadata: dict[str, object] = {}
        if memory.documents.enable_metadata_extraction:
            metadata = {**where, "type": kind, "sha256": digest}
        async with open_memory(config) as (memory, store, embedder):
            tracked = _Tracked(store, progress)
            chunks, _ = await store_text(memory, tracked, embedder, source=file.path, text=text,
                                         metadata=metadata)  # fmt: skip
    stored = progress.stored
    return FileProgress(path=file.path, chunks=chunks, done=chunks, stored=stored,
                        skipped=max(chunks - stored, 0))  # fmt: skip


async def _read(file: IngestFile, documents: DocumentsConfig) -> tuple[str, str]:
    """The file's text and hash, which must be the hash the client saw."""
    path = Path(file.path)
    if not path.exists():
        raise MemorySetupError(
            f"{path}: does not exist on host {socket.gethostname()}, where the worker runs "
            "(the worker reads the files: run it where they are)"
        )
    text, digest = await asyncio.to_thread(read_with_hash, path, documents)
    if digest != file.sha256:
        raise ApplicationError(
            f"{path}: changed since it was checked for ingestion (sha256 {file.sha256[:12]}… "
            f"then, {digest[:12]}… now); ingest it again to store what it holds now",
            type="FileChanged", non_retryable=True,
        )  # fmt: skip
    return text, digest


def _earlier(path: str) -> int:
    """Chunks stored by the attempts before this one (their last heartbeat), 0 on the first.
    They are in the store now, so this attempt skips them; they still count as stored."""
    details = activity.info().heartbeat_details
    if not details:
        return 0
    earlier = FileProgress.model_validate(details[0])
    return earlier.stored if earlier.path == path else 0


class _Progress:
    """A file's progress as the heartbeats carry it."""

    def __init__(self, path: str, stored_before: int) -> None:
        self.path, self.stored_before = path, stored_before
        self.chunks = self.done = self.stored_now = 0

    @property
    def stored(self) -> int:
        return self.stored_before + self.stored_now

    def beat(self) -> None:
        activity.heartbeat(FileProgress(path=self.path, chunks=self.chunks, done=self.done,
                                        stored=self.stored,
                                        skipped=max(self.done - self.stored, 0)))  # fmt: skip


class _Tracked:
    """The flow's store, counting what ``store_text`` finds known and adds, and heartbeating
    after each batch it adds."""

    def __init__(self, store: Store, progress: _Progress) -> None:
        self.store, self.progress = store, progress
        self.provider, self.dimensions = store.provider, store.dimensions

    async def known(self, scope: str, hashes: Sequence[str]) -> set[str]:
        known = await self.store.known(scope, hashes)
        self.progress.chunks, self.progress.done = len(hashes), len(known)
        self.progress.beat()
        return known

    async def add(self, records: Sequence[Record]) -> int:
        added = await self.store.add(records)
        self.progress.done += len(records)
        self.progress.stored_now += added
        self.progress.beat()
        return added

    async def search(
        self, vector: Sequence[float], query: str, *, scopes: Sequence[str], k: int,
        threshold: float = 0.0,
    ) -> list[Hit]:  # fmt: skip
        return await self.store.search(vector, query, scopes=scopes, k=k, threshold=threshold)

    async def recent(self, scope: str, limit: int) -> list[Hit]:
        return await self.store.recent(scope, limit)

    async def stats(self) -> MemoryStats:
        return await self.store.stats()

    async def forget(self, *, source: str | None = None, scope: str | None = None) -> int:
        return await self.store.forget(source=source, scope=scope)

    async def close(self) -> None:
        await self.store.close()
