"""A knowledge-base ingestion (``agentflow memory ingest``): one activity per file, a few at a
time, on the flow's task queue, whose worker holds the flow's ``[agent_memory]`` store.

Why a workflow: a crashed worker's file is retried on another (the activity resumes from its
heartbeat, and chunks already stored are not embedded again), and the client can go away and
ask later how far it got (the ``ingest_progress`` query).

What fails: a file that cannot be ingested (gone, changed since the client hashed it, not
text, a store that refuses it, or a store that stayed down through every retry) is listed in
the result's ``failures`` and the others go on. The ingestion itself always completes, with a
result that says what was stored: a partial ingestion is useful and running it again stores
only what is missing. ``agentflow memory ingest`` exits 1 when any file failed.

A long ingestion continues as new every ``files_per_run`` files (500), carrying its totals, so
its history stays bounded.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from agentflow.models.memory import (
        FileFailure,
        FileProgress,
        FileRequest,
        IngestFile,
        IngestProgress,
        IngestRequest,
        IngestResult,
    )
    from agentflow.names import INGEST_PROGRESS_QUERY, MEMORY_INGEST_FILE, MEMORY_INGEST_WORKFLOW

# A file of max_file_size embedded batch by batch: long, but the heartbeat catches a crash.
FILE_TIMEOUT = timedelta(hours=2)
# A store or embedding service that is down is retried for about ten minutes, then the file
# fails (run the ingestion again later: what was stored stays).
FILE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=90),
    maximum_attempts=10,
)


@workflow.defn(name=MEMORY_INGEST_WORKFLOW)
class IngestWorkflow:
    @workflow.init
    def __init__(self, request: IngestRequest) -> None:
        carried = request.progress
        self.progress = (
            carried.model_copy(update={"current": [], "running": []})
            if carried is not None
            else IngestProgress(flow=request.flow, files_total=len(request.files))
        )

    @workflow.run
    async def run(self, request: IngestRequest) -> IngestResult:
        cut = request.files_per_run
        files, rest = request.files[:cut], request.files[cut:]
        self._show()
        tasks: list[asyncio.Task[None]] = []
        for file in files:
            await workflow.wait_condition(lambda: len(self.progress.current) < request.concurrency)
            self.progress.current.append(file.path)
            tasks.append(asyncio.create_task(self._ingest(request, file)))
        await asyncio.gather(*tasks)
        if rest:
            workflow.continue_as_new(
                request.model_copy(update={"files": rest, "progress": self.progress})
            )
        return IngestResult.model_validate(self.progress.model_dump(exclude={"current", "running"}))

    async def _ingest(self, request: IngestRequest, file: IngestFile) -> None:
        try:
            done: FileProgress = await workflow.execute_activity(
                MEMORY_INGEST_FILE,
                FileRequest(flow=request.flow, file=file),
                result_type=FileProgress,
                start_to_close_timeout=FILE_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_seconds),
                retry_policy=FILE_RETRY,
                summary=file.path[-200:],
            )
            self.progress.chunks += done.chunks
            self.progress.stored += done.stored
            self.progress.skipped += done.skipped
        except ActivityError as err:
            self.progress.failures.append(FileFailure(path=file.path, error=_reason(err)))
        finally:
            self.progress.current.remove(file.path)
            self.progress.files_done += 1
            self._show()

    @workflow.query(name=INGEST_PROGRESS_QUERY)
    def ingest_progress(self) -> IngestProgress:
        return self.progress

    def _show(self) -> None:
        """What the Temporal UI shows of a running ingestion."""
        p = self.progress
        failed = f", {p.files_failed} failed" if p.failures else ""
        workflow.set_current_details(
            f"**memory ingest** of flow `{p.flow}`: {p.files_done}/{p.files_total} files"
            f"{failed}; {p.stored} chunks stored, {p.skipped} already stored"
        )


def _reason(err: ActivityError) -> str:
    """The one line the activity gave (ApplicationError), else Temporal's (a timeout)."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)
