"""Pure state arithmetic shared by the workflows and the trace: what an agent changed, and
merging the outputs of agents that ran side by side."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentflow.models.flow import State


def changed_keys(before: State, after: State) -> list[str]:
    """Data keys (and ``meta.``, ``context.`` keys) that an agent added, changed or removed."""
    data = _changed(before.data, after.data)
    meta = _changed(before.meta, after.meta)
    context = _changed(before.context, after.context)
    return data + [f"meta.{key}" for key in meta] + [f"context.{key}" for key in context]


def merge_states(base: State, outputs: list[State]) -> State:
    """Apply each output's changes to ``base`` in config order: a later agent's write wins."""
    merged = base.clone()
    for output in outputs:
        _apply(merged.data, base.data, output.data)
        _apply(merged.meta, base.meta, output.meta)
        _apply(merged.context, base.context, output.context)
    return merged


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    keys = before.keys() | after.keys()
    return sorted(k for k in keys if k not in before or k not in after or before[k] != after[k])


def _apply(target: dict[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    for key in before.keys() - after.keys():
        target.pop(key, None)
    for key, value in after.items():
        if key not in before or before[key] != value:
            target[key] = value
