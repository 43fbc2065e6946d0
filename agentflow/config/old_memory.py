"""AgenticGoKit's older memory tables, ``[memory]`` and ``[rag]`` (its configuration guides),
read as the ``[agent_memory]`` they stand for.

Each key is moved to its ``[agent_memory]`` key (``OLD_KEYS``); a key with no equivalent is
refused, one line each, saying why, so nothing is dropped unseen. Errors in a moved value name
the key the file wrote (``OldTables.shown``). A memory that is off (``[memory] enabled =
false``) accepts any keys, like a disabled ``[agent_memory]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentflow.config._base import did_you_mean

OLD_TABLES = ("memory", "rag")
# The older key (a dotted path) -> its [agent_memory] key.
OLD_KEYS = {
    "memory.enabled": "enabled",
    "memory.provider": "provider",
    "memory.connection": "connection",
    "memory.connection_string": "connection",
    "memory.dimensions": "dimensions",
    "memory.max_results": "max_results",
    "memory.enable_rag": "enable_rag",
    "memory.embedding.provider": "embedding.provider",
    "memory.embedding.model": "embedding.model",
    "memory.embedding.dimensions": "dimensions",
    "memory.embedding.batch_size": "embedding.max_batch_size",
    "memory.embedding.base_url": "embedding.base_url",
    "memory.embedding.api_key": "embedding.api_key",
    "rag.enabled": "enable_rag",
    "rag.chunk_size": "chunk_size",
    "rag.chunk_overlap": "chunk_overlap",
    "rag.similarity_threshold": "knowledge_score_threshold",
    "rag.max_chunks": "max_results",
    "rag.document_processing.supported_formats": "documents.supported_types",
    "rag.document_processing.max_file_size_mb": "documents.max_file_size",
    "rag.document_processing.extract_metadata": "documents.enable_metadata_extraction",
}
# Older keys with no equivalent -> why.
NO_EQUIVALENT = {
    "collection_name": "one store holds the flow's memory (pgvector: [agent_memory.pgvector] "
    "table_name)",
    "max_entries": "memory is not capped by entries; agentflow memory forget deletes a "
    "source's or a session's records",
    "ttl_seconds": "records do not expire; agentflow memory forget deletes a source's or a "
    "session's records",
}
# The keys that change their name; the others keep theirs (rag.chunk_size: chunk_size).
MAPPING = (
    ", ".join(f"{old} -> {new}" for old, new in OLD_KEYS.items() if old.split(".", 1)[1] != new)
    + "; the other keys keep their names"
)


@dataclass
class OldTables:
    """What reading the older tables found: where each moved key came from, and the lines
    of the tables that could not be moved (left in the document under their own name)."""

    came_from: dict[str, str] = field(default_factory=dict)  # agent_memory key path -> old
    problems: dict[str, list[str]] = field(default_factory=dict)  # "memory" / "rag" -> lines

    def shown(self, key: str) -> str:
        """``key`` (a key path) as the file wrote it."""
        for new, old in sorted(self.came_from.items(), key=lambda item: -len(item[0])):
            if key == new or key.startswith((f"{new}.", f"{new}[")):
                return old + key[len(new) :]
        return key


def _leaves(table: dict[str, Any], path: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key, value in table.items():
        inner = f"{path}.{key}"
        found += _leaves(value, inner) if isinstance(value, dict) else [(inner, value)]
    return found


def read_old_tables(raw: dict[str, Any]) -> tuple[dict[str, Any], OldTables]:
    """``raw`` with ``[memory]`` and ``[rag]`` moved into ``[agent_memory]`` (in the place of
    the first of them); a table with keys that cannot move stays, with its lines."""
    old = {name: raw[name] for name in OLD_TABLES if name in raw}
    found = OldTables()
    if not old:
        return raw, found
    if "agent_memory" in raw or not all(isinstance(table, dict) for table in old.values()):
        where = "beside [agent_memory]" if "agent_memory" in raw else "that is not a table"
        for name in old:
            found.problems[name] = [
                f"{name}: AgenticGoKit's older memory table {where}: write its keys in "
                f"[agent_memory] ({MAPPING})"
            ]
        return raw, found
    memory: dict[str, Any] = {}
    if old.get("memory", {}).get("enabled") is False:
        memory = {"enabled": False}  # a memory that is off: its settings do not matter
        found.came_from["agent_memory"] = "memory"
    else:
        for name, table in old.items():
            found.came_from.setdefault("agent_memory", name)
            lines = [_move(memory, path, value, found) for path, value in _leaves(table, name)]
            found.problems[name] = [line for line in lines if line]
    result: dict[str, Any] = {}
    for key, value in raw.items():
        if key in old and "agent_memory" not in result:
            result["agent_memory"] = memory
        if key not in old or found.problems.get(key):
            result[key] = value
    return result, found


def _move(memory: dict[str, Any], old: str, value: Any, found: OldTables) -> str | None:
    """Put ``old``'s value at its [agent_memory] key; else the line saying why it cannot."""
    new = OLD_KEYS.get(old)
    if new is None:
        if why := NO_EQUIVALENT.get(old.rsplit(".", 1)[-1]):
            return f"{old}: AgenticGoKit's older key has no [agent_memory] equivalent: {why}"
        table = old.rsplit(".", 1)[0]
        keys = [k.removeprefix(f"{table}.") for k in OLD_KEYS if k.rsplit(".", 1)[0] == table]
        return (
            f"{old}: not a key of AgenticGoKit's older [{table}] table"
            f"{did_you_mean(old.rsplit('.', 1)[-1], keys)}; its keys: {', '.join(keys)} "
            "(or write [agent_memory])"
        )
    if old.endswith("max_file_size_mb") and type(value) in (int, float):
        value = f"{value:g}MB"
    *tables, key = new.split(".")
    target = memory
    for table in tables:
        target = target.setdefault(table, {})
    path = f"agent_memory.{new}"
    if key in target and target[key] != value:
        return f"{old}: {found.came_from[path]} already sets agent_memory.{new}; write it once"
    target[key] = value
    found.came_from.setdefault(path, old)
    return None
