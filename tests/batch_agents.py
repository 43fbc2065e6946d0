"""Agents of the batched-subscriber tests (tests/test_bus_batches.py): a batch's call logs one
JSON line when it completes, with the batch id, the events' numbers in order and its pid."""

from __future__ import annotations

import json
import os
import time

from agentflow import Event, FatalError, State


def log_batch(event: Event, state: State) -> dict[str, object]:
    """Sleeps the first event's data["sleep"], fails for good when an event has data["fail"],
    else logs ``{"batch", "ns", "pid"}`` to the first event's data["log_file"]."""
    events = state.data["events"]
    first = events[0]["data"]
    time.sleep(float(first.get("sleep", 0)))
    if any(item["data"].get("fail") for item in events):
        raise FatalError(f"a batch of {len(events)} with a failing event")
    line = {"batch": state.meta["batch"], "ns": [item["data"]["n"] for item in events],
            "pid": os.getpid()}  # fmt: skip
    fd = os.open(first["log_file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:  # one write on an O_APPEND descriptor: lines of processes never mix
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)
    return {"batched": len(events)}
