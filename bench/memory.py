"""W10, agent memory (issue 20): how fast the stores search and load, and what memory costs an
agent call; bench/README.md says what each figure is.
``python -m bench.memory [--quick] [--stores sqlite-vec pgvector]``.

Chunks of generated text, embedded by the dummy embedder in 384 dimensions (a common small
embedding size), in sqlite-vec and in pgvector (PostgreSQL started as tests/_postgres.py does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agentflow import memory
from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, parse_config
from agentflow.inspect.trace.read import run_histories
from agentflow.memory.dummy import DummyEmbedder, dummy_vector
from agentflow.worker.serve import build_worker
from bench.memory_text import Words
from bench.report import Report, load, machine
from bench.server import start_server
from bench.systems import REPO
from bench.workloads import Metrics, p95
from tests._postgres import INSTALL, PostgresServer, pgvector_bindirs

DIMENSIONS = 384  # all-MiniLM-L6-v2, bge-small-en, e5-small: a common small embedding size
K = 10
TARGET_P95_MS = 50.0  # issue 20: retrieval p95 at 100,000 chunks
PROVIDERS = {"sqlite-vec": "sqlite", "pgvector": "pgvector"}
BATCH = 5000
CHUNK_WORDS = 40  # ~280 characters: short chunks keep 100,000 dummy embeddings quick
QUERY_WORDS = 8
DATABASE = "agentflow_bench"


@dataclass(frozen=True)
class MemorySizes:
    chunks: tuple[int, ...] = (10_000, 100_000)  # searched at each size, loaded on the way
    queries: int = 200  # per search measurement, after a warm-up of a tenth (at least 2)
    text_megabytes: float = 3.0  # through store_text
    calls: int = 50  # agent calls of each kind (memory off, on each store; run, session)


QUICK_SIZES = MemorySizes(chunks=(300, 1000), queries=5, text_megabytes=0.05, calls=2)


def chunk_records(words: Words, first: int, count: int) -> list[memory.Record]:
    """``count`` knowledge chunks, numbered from ``first``, with their dummy vectors."""
    texts = [words.text(CHUNK_WORDS) for _ in range(count)]
    return [memory.Record(source=f"docs/{at // 100}.md", position=at % 100, end=len(text),
                          text=text, content_hash=memory.content_hash(f"docs/{at // 100}.md", text),
                          vector=dummy_vector(text, DIMENSIONS))
            for at, text in enumerate(texts, first)]  # fmt: skip


def flow(name: str, store: dict[str, Any], enabled: bool) -> FlowConfig:
    """One no-op handler agent, ``memory_enabled`` or not, over ``store``."""
    raw = {
        "agent_flow": {"name": name},
        "orchestration": {"mode": "sequential", "sequential_agents": ["answer"],
                          "timeout_seconds": 120},
        "agents": {"answer": {"handler": "bench.agents:noop", "memory_enabled": enabled}},
        "agent_memory": {**store, "dimensions": DIMENSIONS, "embedding": {"provider": "dummy"}},
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


def label(size: int) -> str:  # 10000 -> 10k
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def spread(name: str, times: list[float]) -> Metrics:  # median and p95
    return {f"{name}_p50_ms": statistics.median(times), f"{name}_p95_ms": p95(times)}


def start_postgres() -> PostgresServer:
    """tests/_postgres.py's server (Debian's PostgreSQL with pgvector, else pgserver's)."""
    if not (bindirs := pgvector_bindirs()):
        raise RuntimeError(f"no PostgreSQL with pgvector on this machine: {INSTALL}")
    try:
        server = PostgresServer(bindirs[0])
    except pytest.skip.Exception as why:  # root without a postgres OS user
        raise RuntimeError(str(why)) from None
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
    except BaseException:
        server.stop()
        raise
    return server


class W10:
    """W10's stores: files in a temporary folder, PostgreSQL started on first use."""

    def __init__(self, sizes: MemorySizes) -> None:
        self.chunks, self.queries, self.calls = sizes.chunks, sizes.queries, sizes.calls
        self.text_megabytes, self.warm_up = sizes.text_megabytes, max(2, sizes.queries // 10)
        self.knowledge: dict[str, dict[str, Any]] = {}  # provider -> keys of the KB store
        self._folder = tempfile.TemporaryDirectory(prefix="bench-memory-")
        self._postgres: PostgresServer | None = None

    async def __aenter__(self) -> W10: return self  # fmt: skip

    async def __aexit__(self, *_: object) -> None:
        if self._postgres is not None:
            await asyncio.to_thread(self._postgres.stop)
        self._folder.cleanup()

    async def store_keys(self, provider: str, name: str) -> dict[str, Any]:
        if provider == "sqlite":
            return {"provider": "sqlite", "connection": f"{self._folder.name}/{name}.db"}
        if self._postgres is None:
            self._postgres = await asyncio.to_thread(start_postgres)
        url = self._postgres.url(DATABASE)
        return {"provider": "pgvector", "connection": url, "pgvector": {"table_name": name}}

    async def stores(self, system: Any, provider: str) -> Metrics:
        """Load, search at each size, the retrieve path at the first; then store_text."""
        config = flow(f"bench-w10-{provider}", await self.store_keys(provider, "w10_chunks"), True)
        words, embedder = Words(seed=10), DummyEmbedder(DIMENSIONS)
        queries = [words.text(QUERY_WORDS) for _ in range(self.warm_up + self.queries)]
        vectors, metrics, loaded, adding = await embedder.embed(queries), Metrics(), 0, 0.0
        store = await memory.open_store(memory.memory_of(config))

        async def search(i: int) -> None:
            hits = await store.search(vectors[i], queries[i], scopes=[memory.KNOWLEDGE], k=K)
            if len(hits) != K:
                raise RuntimeError(f"a search of k={K} found {len(hits)} chunks")

        async def embed_search(i: int) -> None:
            [vector] = await embedder.embed([queries[i]])
            await store.search(vector, queries[i], scopes=[memory.KNOWLEDGE], k=K)

        async def retrieve(i: int) -> None:
            await memory.retrieve(config, queries[i])

        try:
            for size in self.chunks:
                for first in range(loaded, size, BATCH):
                    batch = chunk_records(words, first, min(BATCH, size - first))
                    started = time.perf_counter()
                    if (added := await store.add(batch)) != len(batch):
                        raise RuntimeError(f"{added} of {len(batch)} new chunks stored")
                    adding, loaded = adding + time.perf_counter() - started, loaded + added
                ways = [search, embed_search, retrieve] if size == self.chunks[0] else [search]
                for way in ways:
                    metrics |= spread(f"{way.__name__}_{label(size)}", await self.timed(way))
                if hasattr(store, "exact_rows"):  # sqlite-vec: its searches against exact ones
                    metrics[f"search_recall_{label(size)}"] = await recall(store, vectors, queries)
            metrics["add_chunks_per_s"] = loaded / adding
        finally:
            await store.close()
        met = metrics[f"search_{label(self.chunks[-1])}_p95_ms"] < TARGET_P95_MS
        metrics[f"p95_under_{TARGET_P95_MS:g}ms_at_{label(self.chunks[-1])}"] = float(met)
        return metrics | await self.ingest(provider)

    async def timed(self, call: Callable[[int], Awaitable[Any]]) -> list[float]:
        """Milliseconds of ``call(i)``, ``queries`` times after ``warm_up`` untimed calls."""
        times = []
        for index in range(self.warm_up + self.queries):
            started = time.perf_counter()
            await call(index)
            times.append((time.perf_counter() - started) * 1000)
        return times[self.warm_up :]

    async def ingest(self, provider: str) -> Metrics:
        """Documents through ``memory.store_text``: the knowledge base of ``per_call``."""
        keys = await self.store_keys(provider, "w10_documents")
        text, config = Words(seed=11).document(self.text_megabytes), flow("w10-in", keys, True)
        async with memory.open_memory(config) as (settings, store, embedder):
            started = time.perf_counter()
            _, stored = await memory.store_text(settings, store, embedder,
                                                source="docs/corpus.md", text=text)  # fmt: skip
            seconds = time.perf_counter() - started
        self.knowledge[provider] = keys
        return {"store_text_chunks": stored, "store_text_chunks_per_s": stored / seconds,
                "store_text_mb_per_s": len(text) / 1e6 / seconds}  # fmt: skip

    async def per_call(self, system: Any) -> Metrics:
        """Memory off, and on with each store, as runs and as session events, interleaved."""
        variants = {"off": flow(f"bench-w10-off-{uuid.uuid4().hex[:6]}", {"provider": "memory"},
                                False)}  # fmt: skip
        for name, provider in PROVIDERS.items():
            if provider in self.knowledge:  # else its workload failed, and its note says why
                variants[name] = flow(f"bench-w10-{provider}-{uuid.uuid4().hex[:6]}",
                                      self.knowledge[provider], True)  # fmt: skip
        queue, words = f"bench-w10-{uuid.uuid4().hex[:8]}", Words(seed=12)
        keys = [(mode, name) for name in variants for mode in ("run", "session")]
        times: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
        ids: dict[tuple[str, str], set[str]] = {key: set() for key in keys}
        sessions = {name: f"w10-{uuid.uuid4().hex[:8]}" for name in variants}
        runners = {name: Runner(config, system.client, queue) for name, config in variants.items()}

        async def call(mode: str, name: str) -> float:
            data, started = {"message": words.text(QUERY_WORDS)}, time.perf_counter()
            runner, session = runners[name], sessions[name] if mode == "session" else None
            handle = await (runner.emit(data, session_id=session, wait=True) if session else
                            runner.start(data))  # fmt: skip
            await handle.result()
            ids[mode, name].add(handle.workflow_id)
            return (time.perf_counter() - started) * 1000

        configs = [(config, REPO) for config in variants.values()]
        async with build_worker(system.client, configs, task_queue=queue):
            for key in keys:  # warm up; each session starts
                await call(*key)
            for index in range(self.calls):  # which goes first turns round
                for key in keys[index % len(keys) :] + keys[: index % len(keys)]:
                    times[key].append(await call(*key))
        metrics: Metrics = {}
        for (mode, name), samples in times.items():
            made = [await activities(system.client, wid) for wid in ids[mode, name]]
            per_call = sum(made) / (len(samples) + 1)  # and the warm-up call
            metrics |= spread(f"{mode}_{name}", samples) | {f"{mode}_{name}_activities": per_call}
        for mode, name in keys[2:]:  # what memory adds to a call: on - off
            for what in ("p50_ms", "activities"):
                extra = metrics[f"{mode}_{name}_{what}"] - metrics[f"{mode}_off_{what}"]
                metrics[f"{mode}_{name}_extra_{what.removeprefix('p50_')}"] = extra
        return metrics


async def recall(store: Any, vectors: list[list[float]], queries: list[str]) -> float:
    """The share of an exact search's hits (every record compared) that the search finds, over
    50 queries: sqlite-vec searches a scope past ``exact_rows`` records through sign codes."""
    usual, found = store.exact_rows, []
    for exact_rows in (usual, sys.maxsize):
        store.exact_rows = exact_rows
        found.append([{h.id for h in await store.search(v, q, scopes=[memory.KNOWLEDGE], k=K)}
                      for v, q in zip(vectors[:50], queries[:50], strict=True)])  # fmt: skip
    store.exact_rows = usual
    return statistics.mean(len(a & b) / K for a, b in zip(*found, strict=True))


async def activities(client: Client, workflow_id: str) -> int:
    """Activities scheduled by a run, or a session's chain of runs."""
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    return len([e async for _, events in run_histories(client, workflow_id) for e in events
                if e.event_type == scheduled])  # fmt: skip


def workloads(
    w10: W10, names: Sequence[str] = tuple(PROVIDERS)
) -> list[tuple[str, Callable[[Any], Awaitable[Metrics]]]]:
    """W10's workloads on the stores ``names`` (all by default), each called with the suite's
    agentflow system (for its client)."""
    stores = [(f"W10 memory, {name}", partial(w10.stores, provider=PROVIDERS[name]))
              for name in names]  # fmt: skip
    return [*stores, ("W10 memory per agent call", w10.per_call)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--stores", nargs="+", choices=list(PROVIDERS), default=list(PROVIDERS))
    args, report, started = parser.parse_args(argv), Report(), time.perf_counter()
    header = [*machine(), f"before: {load()}"]

    async def run() -> None:
        env = await start_server()
        system = type("S", (), {"client": env.client})()
        async with W10(QUICK_SIZES if args.quick else MemorySizes()) as w10:
            for name, workload in workloads(w10, args.stores):
                try:  # a failure is a finding: noted, the others go on
                    report.add(name, "agentflow", await workload(system))
                except Exception as err:
                    report.notes.append(f"{name}: {type(err).__name__}: {err}")
        await env.shutdown()

    asyncio.run(run())
    header += [f"after: {load()}", f"took {time.perf_counter() - started:.0f} s"]
    print("\n".join(header), report.table(), *report.notes, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
