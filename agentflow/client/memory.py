"""Ingesting files into a flow's knowledge base from a client (``agentflow memory ingest``).

The client checks every file first, as the worker will read it (agentflow/memory/documents.py),
so a missing or binary file is one clear error before anything starts; then it starts one
``AgentflowMemoryIngest`` workflow on the flow's task queue, whose worker (the one with the
flow's ``[agent_memory]`` store) chunks, embeds and stores each file.

Files named on the command line must all be ingestible. Files found by walking a directory
that are not (an image next to the docs, a file over max_file_size) are left out of the
ingestion, and ``IngestHandle.left_out`` says which and why.

The workflow id is the flow and a hash of the files' paths and contents: the same files
ingested again while the first ingestion runs join it instead of starting a second one; once
it has finished, a new ingestion starts and finds every chunk stored already (all skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from agentflow.client.connection import ui_url
from agentflow.config import FlowConfig
from agentflow.errors import AgentflowError, ConfigError
from agentflow.memory import MemorySetupError, memory_of
from agentflow.memory.documents import expand_paths, read_with_hash
from agentflow.memory.web import check_url, is_url
from agentflow.models.memory import (
    FileFailure,
    FileProgress,
    IngestFile,
    IngestProgress,
    IngestRequest,
    IngestResult,
)
from agentflow.names import (
    INGEST_PROGRESS_QUERY,
    MEMORY_INGEST_FILE,
    MEMORY_INGEST_ID_PREFIX,
    MEMORY_INGEST_WORKFLOW,
)

# The file list travels in the workflow's input, and Temporal payloads are limited to 2 MB.
MAX_REQUEST_BYTES = 1_500_000
# A query is answered in milliseconds by a live worker; a slower one is skipped, not waited on.
QUERY_TIMEOUT_SECONDS = 5.0
POLL_SECONDS = 0.5

OnProgress = Callable[[IngestProgress], None]


@dataclass
class IngestHandle:
    """A started (or joined) ingestion."""

    workflow_id: str
    files: list[IngestFile]
    handle: WorkflowHandle[Any, IngestResult]
    client: Client
    ui_url: str
    task_queue: str
    left_out: list[FileFailure] = field(default_factory=list)  # found in directories, not taken

    async def progress(self) -> IngestProgress:
        """How far it got (a query: the flow's worker must be up), with the chunks the files
        being ingested have stored so far (their activities' heartbeats)."""
        return await ingest_progress(self.client, self.workflow_id)

    async def result(self, on_progress: OnProgress | None = None) -> IngestResult:
        """Wait for the ingestion; ``on_progress`` is called with each new progress."""
        waiting = asyncio.ensure_future(self._result())
        last: IngestProgress | None = None
        try:
            while not waiting.done():
                if on_progress is not None and (now := await self._poll()) not in (None, last):
                    on_progress(now)
                    last = now
                await asyncio.wait([waiting], timeout=POLL_SECONDS)
            return await waiting
        finally:
            waiting.cancel()

    async def _result(self) -> IngestResult:
        try:
            return await self.handle.result()
        except WorkflowFailureError as err:  # terminated, cancelled, timed out: not a file
            raise AgentflowError(
                f"ingestion {self.workflow_id} failed: {err.cause or err}"
            ) from None

    async def _poll(self) -> IngestProgress | None:
        """The progress, or None while no worker answers (the ingestion waits for one)."""
        with contextlib.suppress(asyncio.TimeoutError, RPCError, WorkflowQueryFailedError):
            return await asyncio.wait_for(self.progress(), QUERY_TIMEOUT_SECONDS)
        return None


async def ingest(
    client: Client,
    config: FlowConfig,
    paths: Sequence[Path | str],
    *,
    task_queue: str | None = None,
    wait: bool = True,
    on_progress: OnProgress | None = None,
    concurrency: int = 4,
    heartbeat_timeout_seconds: float = 10.0,
) -> IngestResult | IngestHandle:
    """Ingest ``paths`` (files and directories) into ``config``'s knowledge base: the result
    (``wait``), or the handle of the started ingestion. ConfigError, before anything starts,
    for a path that does not exist, a file that cannot be ingested, a flow with no
    ``[agent_memory]``."""
    plan = await plan_ingest(config, paths)  # before anything starts
    handle = await start_ingest(client, config, plan, task_queue=task_queue,
                                concurrency=concurrency,
                                heartbeat_timeout_seconds=heartbeat_timeout_seconds)  # fmt: skip
    return await handle.result(on_progress) if wait else handle


@dataclass
class IngestPlan:
    """The files an ingestion takes, checked (``plan_ingest``), and those left out."""

    files: list[IngestFile]
    left_out: list[FileFailure] = field(default_factory=list)  # found in directories


async def start_ingest(
    client: Client,
    config: FlowConfig,
    paths: Sequence[Path | str] | IngestPlan,
    *,
    task_queue: str | None = None,
    concurrency: int = 4,
    heartbeat_timeout_seconds: float = 10.0,
) -> IngestHandle:
    """Start the ingestion of ``paths`` (checked here, unless already planned with
    ``plan_ingest``), or join the one running for the same files."""
    plan = paths if isinstance(paths, IngestPlan) else await plan_ingest(config, paths)
    files = plan.files
    request = IngestRequest(flow=config.name, files=files, concurrency=concurrency,
                            heartbeat_timeout_seconds=heartbeat_timeout_seconds)  # fmt: skip
    if len(request.model_dump_json()) > MAX_REQUEST_BYTES:
        raise ConfigError(
            f"{len(files)} files are too many for one ingestion (their list travels in "
            "Temporal's workflow input, limited to 2 MB); ingest fewer at a time"
        )
    queue = task_queue or config.task_queue
    workflow_id = ingest_workflow_id(config.name, files)
    handle: WorkflowHandle[Any, IngestResult] = await client.start_workflow(
        MEMORY_INGEST_WORKFLOW,
        request,
        id=workflow_id,
        task_queue=queue,
        result_type=IngestResult,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # the same files: join it
        static_summary=f"memory ingest · {config.name} · {len(files)} files",
    )
    link = ui_url(client, workflow_id, None, config.temporal.ui_url)
    return IngestHandle(workflow_id, files, handle, client, link, queue, plan.left_out)


async def plan_ingest(config: FlowConfig, paths: Sequence[Path | str]) -> IngestPlan:
    """Every file ``paths`` name, read as the worker will (its hash and size); files found in
    directories that cannot be ingested are left out; web pages (``http(s)://``, with
    ``enable_url_scraping``) are taken as named, for the worker to fetch. ConfigError for a
    flow without ``[agent_memory]``, a path that does not exist, a named file that cannot be
    ingested, a URL the flow does not fetch."""
    memory = memory_of(config)
    if not paths:
        raise ConfigError("memory ingest: give at least one file or directory")
    pages = dict.fromkeys(check_url(str(p), memory.documents) for p in paths if is_url(p))
    paths = [p for p in paths if not is_url(p)]
    named = {Path(p).expanduser().resolve() for p in paths}
    # Pages are fetched by the worker (agentflow/memory/web.py): no hash or size here.
    plan = IngestPlan(files=[IngestFile(path=url, sha256="", size=0) for url in pages])
    for path in expand_paths(paths):
        try:
            _, digest = await asyncio.to_thread(read_with_hash, path, memory.documents)
        except MemorySetupError as err:
            if path in named:
                raise ConfigError(str(err)) from None
            plan.left_out.append(FileFailure(path=str(path), error=str(err)))
            continue
        plan.files.append(IngestFile(path=str(path), sha256=digest, size=path.stat().st_size))
    if not plan.files:
        given = ", ".join(map(str, paths))
        left = plan.left_out
        why = f" ({len(left)} left out: {left[0].error})" if left else ""
        raise ConfigError(f"memory ingest: no file to ingest in {given}{why}")
    return plan


def ingest_workflow_id(flow: str, files: Sequence[IngestFile]) -> str:
    """The same files with the same contents: the same id."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.path}\0{file.sha256}\n".encode())
    return f"{MEMORY_INGEST_ID_PREFIX}{flow}:{digest.hexdigest()[:24]}"


async def ingest_progress(client: Client, workflow_id: str) -> IngestProgress:
    """The ingestion's progress query, plus what its running files' last heartbeats say."""
    handle = client.get_workflow_handle(workflow_id)
    progress: IngestProgress = await handle.query(INGEST_PROGRESS_QUERY,
                                                  result_type=IngestProgress)  # fmt: skip
    description = await handle.describe()
    running: list[FileProgress] = []
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name != MEMORY_INGEST_FILE or not pending.HasField(
            "heartbeat_details"
        ):
            continue
        payloads = pending.heartbeat_details.payloads
        if payloads:
            [beat] = await client.data_converter.decode(payloads[:1], [FileProgress])
            if beat.path in progress.current:
                running.append(beat)
    progress.running = running
    return progress
