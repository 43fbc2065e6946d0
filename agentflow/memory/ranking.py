"""How found records are scored, the same in every store: the vectors' cosine similarity,
mixed (``[agent_memory.search] hybrid_search``) with the share of the query's words a record
contains, so an exact term the embedding blurs still lifts the chunk that has it.

Stores fetch the nearest records by vector (``candidates(k)`` of them) and hand them to
``rank``, which scores, drops what is under the threshold and keeps the best ``k``. What the
stores share besides (their connection's ``${VAR}``, the vectors' length check, a row read
back as a Record, the statistics) is here too, so the three say the same thing.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agentflow.config.llm import MissingVariable, expand_env
from agentflow.config.memory import AgentMemoryConfig, SearchConfig
from agentflow.memory.errors import MemorySetupError
from agentflow.memory.types import Hit, MemoryStats, Record, SourceStats

_WORD = re.compile(r"\w+")
# Nearest records fetched by vector before re-ranking: enough that the keyword share can
# reorder them, bounded so a large k stays one query (sqlite-vec's k is at most 4096).
MIN_CANDIDATES = 20
MAX_CANDIDATES = 4096


def candidates(k: int) -> int:
    """How many records a store fetches by vector for a search of ``k``: k * 4, at least 20."""
    return min(max(k * 4, MIN_CANDIDATES), MAX_CANDIDATES)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold()))


def keyword_share(query: str, text: str) -> float:
    """The share of the query's distinct words (casefolded) that are words of ``text``."""
    wanted = _words(query)
    if not wanted:
        return 0.0
    return len(wanted & _words(text)) / len(wanted)


def hybrid_score(similarity: float, query: str, text: str, search: SearchConfig) -> float:
    """A record's score: weighted similarity and keyword share, or the similarity alone."""
    if not search.hybrid_search:
        return similarity
    return search.semantic_weight * similarity + search.keyword_weight * keyword_share(query, text)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine similarity of two vectors of one length; 0 when either is all zeros."""
    if len(a) != len(b):
        raise ValueError(f"cosine of vectors of {len(a)} and {len(b)} values")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


def rank(
    found: Iterable[tuple[Record, float]],
    query: str,
    search: SearchConfig,
    *,
    k: int,
    threshold: float,
) -> list[Hit]:
    """The best ``k`` of (record, similarity) pairs as hits, best first; a score under
    ``threshold`` is left out. Ties keep the nearer vector, then the earlier position."""
    scored = []
    for record, similarity in found:
        score = hybrid_score(similarity, query, record.text, search)
        if score >= threshold:
            scored.append((score, similarity, record))
    scored.sort(key=lambda item: (-item[0], -item[1], item[2].position, item[2].content_hash))
    return [hit(record, score, similarity) for score, similarity, record in scored[:k]]


def hit(record: Record, score: float, similarity: float) -> Hit:
    """The hit a store returns for a record (scores rounded: they travel in traces)."""
    return Hit(
        id=record.id,
        scope=record.scope,
        source=record.source,
        position=record.position,
        text=record.text,
        score=round(score, 6),
        similarity=round(similarity, 6),
        metadata=record.metadata,
    )


def connection_text(memory: AgentMemoryConfig, environ: Mapping[str, str] | None) -> str:
    """The store's connection with ``${VAR}`` read from ``environ`` (default ``os.environ``);
    an unset variable is a MemorySetupError naming it."""
    written = memory.store_connection()
    try:
        return expand_env(written, os.environ if environ is None else environ)
    except MissingVariable as missing:
        raise MemorySetupError(
            f"[agent_memory] {memory.provider} connection needs ${{{missing.name}}}, which is "
            f"not set in this process's environment: set {missing.name} (or write the "
            "connection in [agent_memory])"
        ) from None


def check_vectors(vectors: Iterable[Record | Sequence[float]], dimensions: int, where: str) -> None:
    """MemorySetupError unless every vector has ``dimensions`` values: a store keeps one
    length, and a vector of another comes from another embedding model."""
    for item in vectors:
        vector = item.vector if isinstance(item, Record) else item
        if len(vector) != dimensions:
            raise MemorySetupError(
                f"a vector of {len(vector)} values for {where}, which holds {dimensions}: "
                "[agent_memory] dimensions must match the embedding model's output (or use "
                "another store for the other model)"
            )


def record_of(row: Sequence[Any]) -> Record:
    """A stored row (scope, source, position, start, end, text, content_hash, metadata, …)
    as a Record without its vector; metadata as JSON text or already decoded."""
    scope, source, position, start, end, text, digest, metadata = row[:8]
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return Record(scope=scope, source=source, position=position, start=start, end=end,
                  text=text, content_hash=digest, metadata=metadata)  # fmt: skip


def stats_of(
    provider: str, location: str, dimensions: int, counts: Iterable[tuple[str, str, int]]
) -> MemoryStats:
    """A store's statistics from its (source, scope, records) counts."""
    sources = [SourceStats(source=s, scope=sc, chunks=n) for s, sc, n in sorted(counts)]
    scopes: dict[str, int] = {}
    for item in sources:
        scopes[item.scope] = scopes.get(item.scope, 0) + item.chunks
    return MemoryStats(provider=provider, location=location, dimensions=dimensions,
                       records=sum(scopes.values()), scopes=dict(sorted(scopes.items())),
                       sources=sources)  # fmt: skip
