"""Handlers of tests/test_breakers.py: one that fails on purpose while its label is in
FAILING, counting every call, so a test sees whether a breaker let the call through."""

from __future__ import annotations

from agentflow import Event, State

FAILING: set[str] = set()
CALLS: dict[str, int] = {}


def flaky(event: Event, state: State) -> dict[str, bool]:
    label = str(state.data["label"])
    CALLS[label] = CALLS.get(label, 0) + 1
    if label in FAILING:
        raise ConnectionError(f"the service behind {label[:8]} is down")
    return {"served": True}


def fallback(event: Event, state: State) -> dict[str, bool]:
    return {"fallback": True}
