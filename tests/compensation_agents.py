"""Agents and compensations for tests/test_compensation.py: each writes a line to the ledger
file named in the event's data, so a test sees what ran, in which order, how often."""

from __future__ import annotations

import time
from pathlib import Path

from agentflow import Event, FatalError, State


def _write(state: State, line: str) -> None:
    if "ledger" not in state.data:  # the golden history's run: nothing to write
        return
    with Path(str(state.data["ledger"])).open("a", encoding="utf-8") as ledger:
        ledger.write(line + "\n")


def book(event: Event, state: State) -> dict[str, object]:
    """Books something, named by its place in the sequence (a, b, ...); the compensation
    gets the state it produced and undoes its last booking."""
    booked = list(state.data.get("booked", []))
    name = "abcdefgh"[len(booked)]
    _write(state, f"do {name}")
    return {"booked": [*booked, name]}


def fail(event: Event, state: State) -> None:
    _write(state, "fail")
    raise FatalError("the last step cannot be done")


def undo(event: Event, state: State) -> None:
    """Undoes the last booking of the state it is given (the one its agent produced)."""
    _write(state, f"undo {state.data['booked'][-1]}")


async def undo_async(event: Event, state: State) -> None:
    _write(state, f"undo-async {state.data['booked'][-1]}")


def undo_broken(event: Event, state: State) -> None:
    _write(state, "undo-broken")
    raise RuntimeError("the refund service is down")


NOT_CALLABLE = 42


def undo_stuck_once(event: Event, state: State) -> None:
    """Hangs on its first call (the test kills its worker there), then undoes as ``undo``."""
    marker = Path(str(state.data["ledger"]) + ".stuck")
    if not marker.exists():
        marker.write_text("stuck", encoding="utf-8")
        _write(state, "undo stuck")
        time.sleep(60)  # the worker is killed meanwhile
    undo(event, state)
