"""One Temporal workflow per orchestration mode. Deterministic code only."""

from __future__ import annotations

from workflows.collaborative import CollaborativeFlow
from workflows.loop import LoopFlow
from workflows.mixed import MixedFlow
from workflows.route import RouteFlow
from workflows.sequential import SequentialFlow

WORKFLOWS_BY_MODE: dict[str, type] = {
    "route": RouteFlow,
    "sequential": SequentialFlow,
    "collaborative": CollaborativeFlow,
    "loop": LoopFlow,
    "mixed": MixedFlow,
}
ALL_WORKFLOWS: list[type] = list(WORKFLOWS_BY_MODE.values())

__all__ = [
    "ALL_WORKFLOWS",
    "WORKFLOWS_BY_MODE",
    "CollaborativeFlow",
    "LoopFlow",
    "MixedFlow",
    "RouteFlow",
    "SequentialFlow",
]
