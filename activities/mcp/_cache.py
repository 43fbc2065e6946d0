"""``[mcp.cache]``: MCP tool results kept in the worker's memory for a TTL per tool.

An identical call (same server, tool and arguments) within the TTL is answered from here and
never reaches the server. Bounded by ``max_keys`` and ``max_size_mb`` (least recently used
entries go first); expired entries are never served and are swept every
``cleanup_interval_ms``. Each worker process keeps its own cache: a workflow never sees it,
because a tool call's result is recorded in history once the call's activity completes.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentflow.config.mcp import MCPCacheConfig


@dataclass
class _Entry:
    expires: float
    size: int
    value: Any


class ResultCache:
    """One worker's cache of tool results (keys are built by ``key``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._clock = clock
        self._swept = clock()

    @staticmethod
    def key(server: str, tool: str, args: dict[str, Any]) -> str:
        # Argument order does not make two calls different.
        return json.dumps([server, tool, args], sort_keys=True, default=str)

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` for a live entry, ``(False, None)`` otherwise."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry.expires <= self._clock():
            self._drop(key)
            return False, None
        self._entries.move_to_end(key)
        return True, entry.value

    def put(self, key: str, value: Any, ttl_ms: int, policy: MCPCacheConfig) -> None:
        """Keep ``value`` for ``ttl_ms`` (0: not at all) within the policy's bounds."""
        now = self._clock()
        if now - self._swept >= policy.cleanup_interval_ms / 1000:
            self._sweep(now)
        size = len(json.dumps(value, default=str))
        limit = policy.max_size_mb * 1024 * 1024
        if ttl_ms <= 0 or size > limit:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = _Entry(now + ttl_ms / 1000, size, value)
        self._bytes += size
        while len(self._entries) > policy.max_keys or self._bytes > limit:
            self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _sweep(self, now: float) -> None:
        self._swept = now
        for key in [key for key, entry in self._entries.items() if entry.expires <= now]:
            self._drop(key)

    def _drop(self, key: str) -> None:
        self._bytes -= self._entries.pop(key).size
