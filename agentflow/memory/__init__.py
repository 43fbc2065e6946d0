"""Agent memory and RAG: a knowledge base of ingested documents and the turns of sessions,
in a vector store (sqlite-vec, pgvector, or this process), searched for the agents that set
``memory_enabled = true``.

The library calls here are what the CLI (``agentflow memory search|stats|forget``) and the
worker's memory activities use. They do I/O: workflow code never imports this package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from agentflow.config import FlowConfig
from agentflow.config.memory import AgentMemoryConfig
from agentflow.errors import ConfigError
from agentflow.memory.chunking import Chunk, chunk_text
from agentflow.memory.embedding import Embedder, embedder_for
from agentflow.memory.errors import MemorySetupError, MemoryUnavailable
from agentflow.memory.store import Store, open_store
from agentflow.memory.types import (
    KNOWLEDGE,
    Hit,
    MemoryStats,
    Record,
    content_hash,
    session_scope,
)
from agentflow.names import MEMORY_TURN_SOURCE_PREFIX

__all__ = [
    "KNOWLEDGE",
    "Chunk",
    "Embedder",
    "Hit",
    "MemorySetupError",
    "MemoryStats",
    "MemoryUnavailable",
    "Record",
    "Store",
    "chunk_text",
    "content_hash",
    "embedder_for",
    "forget",
    "memory_of",
    "open_memory",
    "open_store",
    "remember",
    "retrieve",
    "search",
    "session_scope",
    "stats",
    "store_text",
]


def memory_of(config: FlowConfig) -> AgentMemoryConfig:
    """The flow's ``[agent_memory]``, or a ConfigError saying there is none."""
    memory = config.agent_memory
    if memory is None or not memory.enabled:
        raise ConfigError(
            f"flow {config.name!r} has no agent memory: add an [agent_memory] table "
            '(provider = "sqlite" needs nothing installed)'
        )
    return memory


@asynccontextmanager
async def open_memory(
    config: FlowConfig, environ: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[AgentMemoryConfig, Store, Embedder]]:
    """The flow's memory settings, its store (closed on exit) and its embedder."""
    memory = memory_of(config)
    embedder = embedder_for(config, environ)
    store = await open_store(memory, environ)
    try:
        yield memory, store, embedder
    finally:
        await store.close()


async def store_text(
    memory: AgentMemoryConfig,
    store: Store,
    embedder: Embedder,
    *,
    source: str,
    text: str,
    scope: str = KNOWLEDGE,
    first_position: int = 0,
    metadata: Mapping[str, object] | None = None,
) -> tuple[int, int]:
    """Chunk ``text`` (``chunk_size``, ``chunk_overlap``), embed the chunks the scope does not
    hold yet in batches of ``embedding.max_batch_size``, and store them. Returns (chunks in the
    text, chunks newly stored): storing the same text twice stores it once."""
    chunks = chunk_text(text, memory.chunk_size, memory.chunk_overlap)
    hashes = [content_hash(source, c.text) for c in chunks]
    known = await store.known(scope, hashes)
    todo = [(c, h) for c, h in zip(chunks, hashes, strict=True) if h not in known]
    stored = 0
    batch = memory.embedding.max_batch_size
    for at in range(0, len(todo), batch):
        part = todo[at : at + batch]
        vectors = await embedder.embed([c.text for c, _ in part])
        records = [
            Record(
                scope=scope,
                source=source,
                position=first_position + c.position,
                start=c.start,
                end=c.end,
                text=c.text,
                content_hash=h,
                vector=v,
                metadata=dict(metadata or {}),
            )
            for (c, h), v in zip(part, vectors, strict=True)
        ]
        stored += await store.add(records)
    return len(chunks), stored


async def retrieve(
    config: FlowConfig,
    query: str,
    *,
    session_id: str | None = None,
    k: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Hit]:
    """What a memory-enabled agent gets for its input: the best ``max_results`` of two
    searches, each weighted: the knowledge base's best ``knowledge_max_results`` (when
    ``enable_rag`` and ``enable_knowledge_base``; ``rag_knowledge_weight``) and the session's
    best ``conversation_memory_limit`` earlier turns (``rag_personal_weight``)."""
    async with open_memory(config, environ) as (memory, store, embedder):
        k = k or memory.max_results
        if not query.strip():
            return []
        [vector] = await embedder.embed([query])
        threshold = memory.score_threshold()
        hits: list[Hit] = []
        if memory.enable_rag and memory.enable_knowledge_base:
            found = await store.search(vector, query, scopes=[KNOWLEDGE], threshold=threshold,
                                       k=memory.knowledge_max_results)  # fmt: skip
            hits += [_weighted(h, memory.rag_knowledge_weight) for h in found]
        if session_id:
            found = await store.search(vector, query, scopes=[session_scope(session_id)],
                                       k=memory.conversation_memory_limit,
                                       threshold=threshold)  # fmt: skip
            hits += [_weighted(h, memory.rag_personal_weight) for h in found]
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:k]


def _weighted(hit: Hit, weight: float) -> Hit:
    return hit.model_copy(update={"score": round(hit.score * weight, 6)})


async def search(
    config: FlowConfig,
    query: str,
    *,
    k: int | None = None,
    session_id: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Hit]:
    """``agentflow memory search``: the knowledge base (or one session's memory) for a query,
    unweighted, best first. An empty store gives []."""
    async with open_memory(config, environ) as (memory, store, embedder):
        [vector] = await embedder.embed([query])
        scope = session_scope(session_id) if session_id else KNOWLEDGE
        return await store.search(vector, query, scopes=[scope], k=k or memory.max_results,
                                  threshold=memory.score_threshold())  # fmt: skip


async def stats(config: FlowConfig, environ: Mapping[str, str] | None = None) -> MemoryStats:
    """``agentflow memory stats``: records per scope and source."""
    memory = memory_of(config)
    store = await open_store(memory, environ)
    try:
        return await store.stats()
    finally:
        await store.close()


async def forget(
    config: FlowConfig,
    *,
    source: str | None = None,
    session_id: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """``agentflow memory forget``: delete a source's records (a path as ingested) and/or a
    session's memory; returns how many records went."""
    if source is None and session_id is None:
        raise ConfigError("forget needs a source or a session")
    memory = memory_of(config)
    store = await open_store(memory, environ)
    try:
        scope = session_scope(session_id) if session_id else None
        return await store.forget(source=source, scope=scope)
    finally:
        await store.close()


async def remember(
    config: FlowConfig,
    session_id: str,
    *,
    agent: str,
    turn: int,
    texts: Sequence[str],
    environ: Mapping[str, str] | None = None,
) -> int:
    """Store a memory-enabled agent's turn in its session's memory (its input and output,
    chunked like documents); returns how many chunks were new."""
    text = "\n\n".join(t for t in texts if t.strip())
    if not text:
        return 0
    source = f"{MEMORY_TURN_SOURCE_PREFIX}{agent}"
    async with open_memory(config, environ) as (memory, store, embedder):
        _, stored = await store_text(memory, store, embedder, source=source, text=text,
                                     scope=session_scope(session_id), first_position=turn * 1000,
                                     metadata={"agent": agent, "turn": turn})  # fmt: skip
        return stored
