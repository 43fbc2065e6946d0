"""The result cache of agents with ``cache = { ttl = "1h" }``: what an agent returned, keyed
by the flow, the agent, a stable hash of its resolved config and its input (the state, the
event's data, what a memory-enabled agent recalled), kept until its ttl ends.

Where: with a filesystem ``[payloads]`` store, in it (``<path>/cache/``), so every worker and
client that shares the payloads directory shares the cache; otherwise a SQLite file (``[cache]
path``, ``.agentflow/cache.sqlite`` under the working directory). Both survive restarts. The
agent activity looks results up and stores them (activities/cache.py); ``agentflow cache
clear`` calls ``clear_cache``. Each lookup is one indexed read (well under a millisecond
locally), small beside an agent call's round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from agentflow.config import FlowConfig
from agentflow.config.cache import DEFAULT_CACHE_PATH
from agentflow.models.flow import AgentInput, State
from agentflow.models.usage import Usage


class CachedResult(BaseModel):
    """One cached result: the state the agent left and what its call used."""

    state: State
    usage: Usage | None = None
    stored_at: float  # seconds since the epoch
    expires_at: float


class ResultStore(Protocol):
    """Where cached results live (SQLite or the payloads directory)."""

    def get(self, flow: str, agent: str, key: str) -> CachedResult | None: ...

    def put(self, flow: str, agent: str, key: str, entry: CachedResult) -> None: ...

    def clear(self, flow: str, agent: str | None) -> int: ...


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def config_hash(request: AgentInput) -> str:
    """A stable hash of the agent's resolved config: its table (without ``cache``) and, for
    an LLM agent, the model settings and MCP servers it was resolved to."""
    return _digest({
        "spec": request.spec.model_dump(mode="json", exclude={"cache"}),
        "model": request.model.model_dump(mode="json") if request.model else None,
        "llm": request.llm.model_dump(mode="json") if request.llm and not request.model else None,
        "mcp": request.mcp.model_dump(mode="json") if request.mcp else None,
    })  # fmt: skip


def cache_key(request: AgentInput) -> str:
    """The key of ``request``'s result: flow, agent, config hash and input."""
    return _digest({
        "flow": request.flow,
        "agent": request.agent,
        "config": config_hash(request),
        "state": request.state.model_dump(mode="json"),
        "data": request.event.data,
        "memory": request.memory.model_dump(mode="json") if request.memory else None,
    })  # fmt: skip


class SQLiteResults:
    """Cached results in one SQLite file: one connection per file and process, used by one
    thread at a time (WAL, synchronous=NORMAL: a crash of the process loses nothing; a power
    cut may lose the last results, which a cache can afford)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _session(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, flow TEXT NOT "
                    "NULL, agent TEXT NOT NULL, expires_at REAL NOT NULL, entry TEXT NOT NULL)"
                )
                db.commit()
                self._db = db
            try:
                yield self._db
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise

    def get(self, flow: str, agent: str, key: str) -> CachedResult | None:
        with self._session() as db:
            row = db.execute("SELECT entry FROM results WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            entry = CachedResult.model_validate_json(row[0])
            if entry.expires_at <= time.time():
                db.execute("DELETE FROM results WHERE key = ?", (key,))
                return None
            return entry

    def put(self, flow: str, agent: str, key: str, entry: CachedResult) -> None:
        with self._session() as db:
            db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
                (key, flow, agent, entry.expires_at, entry.model_dump_json()),
            )

    def clear(self, flow: str, agent: str | None) -> int:
        if not self.path.exists():
            return 0
        with self._session() as db:
            if agent is None:
                gone = db.execute("DELETE FROM results WHERE flow = ?", (flow,))
            else:
                gone = db.execute("DELETE FROM results WHERE flow = ? AND agent = ?", (flow, agent))
            return gone.rowcount


# One SQLiteResults per file in a process (its connection is opened once).
_SQLITE: dict[Path, SQLiteResults] = {}


class PayloadDirResults:
    """Cached results as files ``<payloads path>/cache/<flow>/<agent>/<key>.json`` (flow and
    agent names hashed, so any name is a safe file name); written aside, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, flow: str, agent: str | None = None) -> Path:
        path = self.root / _digest(flow)[:16]
        return path if agent is None else path / _digest(agent)[:16]

    def get(self, flow: str, agent: str, key: str) -> CachedResult | None:
        path = self._dir(flow, agent) / f"{key}.json"
        try:
            entry = CachedResult.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        if entry.expires_at <= time.time():
            path.unlink(missing_ok=True)
            return None
        return entry

    def put(self, flow: str, agent: str, key: str, entry: CachedResult) -> None:
        folder = self._dir(flow, agent)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as tmp:
            tmp.write(entry.model_dump_json().encode())
        os.replace(tmp.name, folder / f"{key}.json")

    def clear(self, flow: str, agent: str | None) -> int:
        folder = self._dir(flow, agent)
        if not folder.exists():
            return 0
        count = sum(1 for _ in folder.rglob("*.json"))
        shutil.rmtree(folder, ignore_errors=True)
        return count


def result_store(config: FlowConfig | None) -> ResultStore:
    """The store of ``config``'s cached results: its filesystem ``[payloads]`` directory when
    it has one, else the SQLite file of ``[cache] path`` (s3 and gcs payload stores hold
    blobs by content, not by key: their flows keep the cache in SQLite). None (a worker
    that does not know the flow's file): the default SQLite file."""
    payloads = config.payloads if config else None
    if payloads is not None and payloads.storage == "filesystem":
        return PayloadDirResults(Path(payloads.path).absolute() / "cache")
    path = Path(config.cache.path if config else DEFAULT_CACHE_PATH).absolute()
    return _SQLITE.setdefault(path, SQLiteResults(path))


async def clear_cache(config: FlowConfig, agent: str | None = None) -> int:
    """Delete the cached results of ``config``'s flow (only ``agent``'s, if given); returns
    how many were deleted."""
    store = result_store(config)
    return await asyncio.to_thread(store.clear, config.name, agent)


__all__ = [
    "CachedResult",
    "ResultStore",
    "cache_key",
    "clear_cache",
    "config_hash",
    "result_store",
]
