"""One Temporal workflow per orchestration mode, plus the session and dead-letter workflows.
Deterministic code only.

The modes are imported lazily: the workflow sandbox re-imports a workflow's module and its
parent package for every new run, and an eager ``__init__`` made each run import all five mode
modules. Profiling W1/W2 showed that import as the largest single cost (bench/RESULTS.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflows.bus_registry import BusRegistryWorkflow
    from workflows.collaborative import CollaborativeFlow
    from workflows.dead_letter import DeadLetterWorkflow
    from workflows.loop import LoopFlow
    from workflows.mixed import MixedFlow
    from workflows.route import RouteFlow
    from workflows.sequential import SequentialFlow
    from workflows.session import SessionWorkflow

    WORKFLOWS_BY_MODE: dict[str, type]
    ALL_WORKFLOWS: list[type]

_MODULES = {
    "route": ("workflows.route", "RouteFlow"),
    "sequential": ("workflows.sequential", "SequentialFlow"),
    "collaborative": ("workflows.collaborative", "CollaborativeFlow"),
    "loop": ("workflows.loop", "LoopFlow"),
    "mixed": ("workflows.mixed", "MixedFlow"),
}
# Not modes: emitted events run in a session; what fails there becomes a dead letter; the
# bus's registry knows which worker serves which subscriber.
_OTHERS = {
    "SessionWorkflow": "workflows.session",
    "DeadLetterWorkflow": "workflows.dead_letter",
    "BusRegistryWorkflow": "workflows.bus_registry",
}


def _by_mode() -> dict[str, type]:
    return {
        mode: getattr(importlib.import_module(module), name)
        for mode, (module, name) in _MODULES.items()
    }


def __getattr__(name: str) -> Any:
    if name == "WORKFLOWS_BY_MODE":
        return _by_mode()
    if name == "ALL_WORKFLOWS":
        others = [getattr(importlib.import_module(m), cls) for cls, m in _OTHERS.items()]
        return list(_by_mode().values()) + others
    for module, cls in _MODULES.values():
        if cls == name:
            return getattr(importlib.import_module(module), name)
    if name in _OTHERS:
        return getattr(importlib.import_module(_OTHERS[name]), name)
    raise AttributeError(f"module 'workflows' has no attribute {name!r}")


__all__ = [
    "ALL_WORKFLOWS",
    "WORKFLOWS_BY_MODE",
    "BusRegistryWorkflow",
    "CollaborativeFlow",
    "DeadLetterWorkflow",
    "LoopFlow",
    "MixedFlow",
    "RouteFlow",
    "SequentialFlow",
    "SessionWorkflow",
]
