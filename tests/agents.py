"""Handlers used by the tests. Each does a small, checkable piece of work."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from agentflow import Event, FatalError, State


def append(event: Event, state: State) -> dict[str, Any]:
    """Appends the agent's name (the event's target) to data["trail"]."""
    return {"trail": [*state.data.get("trail", []), event.target_agent]}


async def async_append(event: Event, state: State) -> State:
    await asyncio.sleep(0)
    out = state.clone()
    out.data["trail"] = [*state.data.get("trail", []), event.target_agent]
    return out


def noop(event: Event, state: State) -> None:
    return None


def record(event: Event, state: State) -> dict[str, Any]:
    """Writes one line per execution to data["log_file"] (counts real executions)."""
    with open(state.data["log_file"], "a", encoding="utf-8") as log:
        log.write(f"{event.target_agent}\n")
    delay = float(state.data.get("delays", {}).get(event.target_agent, 0))
    time.sleep(delay)
    return {"trail": [*state.data.get("trail", []), event.target_agent]}


def flaky(event: Event, state: State) -> dict[str, Any]:
    """Fails until it has been called data["fail_times"] times (counted in a file)."""
    counter = Path(state.data["counter_file"])
    calls = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(calls + 1))
    if calls < int(state.data["fail_times"]):
        raise ConnectionError(f"transient failure {calls + 1}")
    return {"flaky_calls": calls + 1}


def fatal(event: Event, state: State) -> None:
    raise FatalError("the input can never be processed")


def value_error(event: Event, state: State) -> None:
    raise ValueError("bad value")


def bad_output(event: Event, state: State) -> Any:
    return 42


def unserialisable(event: Event, state: State) -> dict[str, Any]:
    return {"handle": object()}


def huge(event: Event, state: State) -> dict[str, Any]:
    return {"blob": "x" * (3 * 1024 * 1024)}


def slow(event: Event, state: State) -> dict[str, Any]:
    time.sleep(float(state.data.get("sleep", 5)))
    return {"slept": True}


def router(event: Event, state: State) -> State:
    """Follows data["routes"][agent] as the next hop, if any."""
    out = state.clone()
    out.data["trail"] = [*state.data.get("trail", []), event.target_agent]
    next_agent = state.data.get("routes", {}).get(event.target_agent)
    if next_agent:
        out.meta["route"] = next_agent
    return out


def counter(event: Event, state: State) -> dict[str, Any]:
    """Loop agent: counts up; complete when data["stop_at"] is reached."""
    count = int(state.data.get("count", 0)) + 1
    stop_at = state.data.get("stop_at")
    return {"count": count, "loop_complete": stop_at is not None and count >= int(stop_at)}


def set_shared(event: Event, state: State) -> dict[str, Any]:
    """Writes its own key and the shared key "winner" (for merge-order tests)."""
    return {event.target_agent: True, "winner": event.target_agent}


def pid(event: Event, state: State) -> dict[str, Any]:
    return {"pid": os.getpid()}


_gauge_lock = threading.Lock()
_running: dict[str, int] = {}
PEAKS: dict[str, int] = {}


def gauge(event: Event, state: State) -> dict[str, Any]:
    """Records the peak number of concurrent calls per data["key"] (workers run in-process)."""
    key = state.data["key"]
    with _gauge_lock:
        _running[key] = _running.get(key, 0) + 1
        PEAKS[key] = max(PEAKS.get(key, 0), _running[key])
    time.sleep(float(state.data.get("sleep", 0.2)))
    with _gauge_lock:
        _running[key] -= 1
    return {event.target_agent: "done"}


def bus_agent(event: Event, state: State) -> State:
    """Appends its name to data["trail"], logs the event it got as a JSON line to
    data["log_file"] (if set) and publishes data["publish"][its name] (if set)."""
    agent = event.target_agent
    if "log_file" in state.data:
        seen = {"agent": agent, "source": event.source_agent, "meta": event.metadata,
                "trail": state.data.get("trail", []), "state_meta": state.meta,
                "n": state.data.get("n"), "pid": os.getpid()}  # fmt: skip
        with open(state.data["log_file"], "a", encoding="utf-8") as log:
            log.write(json.dumps(seen) + "\n")
    out = state.clone()
    out.data["trail"] = [*state.data.get("trail", []), agent]
    if topics := state.data.get("publish", {}).get(agent):
        out.meta["publish"] = topics
    return out


def sizes(event: Event, state: State) -> dict[str, Any]:
    """Records what reached the agent: the event's data and the size of state.data["blob"]."""
    seen = [*state.data.get("seen", []), [len(event.data), len(state.data.get("blob", ""))]]
    return {"seen": seen}


def grow(event: Event, state: State) -> dict[str, Any]:
    """Adds data["grow_bytes"] bytes of data to the state."""
    return {"blob": "x" * int(state.data["grow_bytes"])}
