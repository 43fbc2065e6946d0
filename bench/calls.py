"""When each benchmark agent call began, for W1's per-step latency.

Kept free of imports so that raw Temporal's workflows can pass it through the sandbox without
re-importing anything per run. Every system calls its agents in this process, and W1 runs one
flow at a time, so consecutive entries are consecutive steps of one run.
"""

from __future__ import annotations

import time
from itertools import pairwise

CALL_STARTS: list[float] = []


def mark() -> None:
    """Record that an agent call is starting now."""
    CALL_STARTS.append(time.perf_counter())


def gaps() -> list[float]:
    """Milliseconds between consecutive calls: one per step after the first."""
    return [(later - earlier) * 1000 for earlier, later in pairwise(CALL_STARTS)]
