"""What a knowledge-base ingestion (``agentflow memory ingest``) carries: the files the client
checked, one file's request to the worker, its progress and result, and the ingestion's.

A file is named by its absolute path and the sha256 of its bytes as the client read them: the
worker refuses a file that changed since, so what is stored is what was asked for. Every field
added later must be optional with a default: ingestions in flight carry the old shape.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class IngestFile(BaseModel):
    """A file as the client saw it."""

    path: str  # absolute, or a web page's URL: the records' source
    sha256: str
    size: int


class FileFailure(BaseModel):
    """A file that could not be ingested, and why (one line)."""

    path: str
    error: str


class FileProgress(BaseModel):
    """One file's ingestion: the activity's heartbeat details while it runs, its result after.
    ``stored`` counts chunks stored by this ingestion (across attempts), ``skipped`` the ones
    the store held already."""

    path: str
    chunks: int = 0  # chunks in the file (0 until it is chunked)
    done: int = 0  # chunks stored or skipped so far
    stored: int = 0
    skipped: int = 0


class IngestResult(BaseModel):
    """What an ingestion did: files done (ingested or failed) and their chunks."""

    flow: str
    files_total: int
    files_done: int = 0
    chunks: int = 0
    stored: int = 0
    skipped: int = 0
    failures: list[FileFailure] = Field(default_factory=list)

    @property
    def files_failed(self) -> int:
        return len(self.failures)


class IngestProgress(IngestResult):
    """The ingestion so far (the ``ingest_progress`` query): ``current`` are the files being
    ingested. ``running`` is filled in by the client from the activities' heartbeats (the
    workflow cannot see them): each running file's chunks so far."""

    current: list[str] = Field(default_factory=list)
    running: list[FileProgress] = Field(default_factory=list)

    def live(self) -> IngestResult:
        """The totals including what the running files have stored so far."""
        return IngestResult(
            flow=self.flow, files_total=self.files_total, files_done=self.files_done,
            chunks=self.chunks + sum(r.chunks for r in self.running),
            stored=self.stored + sum(r.stored for r in self.running),
            skipped=self.skipped + sum(r.skipped for r in self.running),
            failures=list(self.failures),
        )  # fmt: skip


class IngestRequest(BaseModel):
    """The ingestion workflow's input. ``progress`` carries the totals into the next run when
    a long ingestion continues as new (with the files not yet done)."""

    flow: str
    files: list[IngestFile]
    concurrency: int = Field(4, ge=1, le=64)  # files ingested at a time
    heartbeat_timeout_seconds: float = Field(10.0, gt=0)
    files_per_run: int = Field(500, ge=1)  # then the workflow continues as new
    progress: IngestProgress | None = None


class FileRequest(BaseModel):
    """The ``memory_ingest_file`` activity's input."""

    flow: str
    file: IngestFile
