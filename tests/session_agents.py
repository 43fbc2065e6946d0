"""Handlers for the session durability tests: each call leaves one line in a log file, so a
test can count exactly which agent ran for which event, in which worker process."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from agentflow import Event, State


@dataclass(frozen=True)
class Call:
    """One logged agent call: ``session event n agent pid``."""

    session: str
    event: str
    n: int
    agent: str
    pid: int

    @property
    def key(self) -> tuple[str, str]:
        return self.event, self.agent


def log_call(event: Event, state: State) -> State:
    """Logs the call, sleeps data["sleep"] seconds (so a kill can land mid-agent), and appends
    data["n"] to context["seen"] when it is the event's last agent (data["last"])."""
    n = int(state.data["n"])
    line = f"{event.session_id} {event.id} {n} {event.target_agent} {os.getpid()}\n"
    # One write on an O_APPEND descriptor: lines from concurrent calls and processes never mix.
    fd = os.open(state.data["log_file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    time.sleep(float(state.data.get("sleep", 0)))
    out = state.clone()
    if event.target_agent == state.data.get("last"):
        out.context["seen"] = [*state.context.get("seen", []), n]
    return out


def count(event: Event, state: State) -> State:
    """Adds one to context["count"]: what the session remembers across its events."""
    out = state.clone()
    out.context["count"] = int(state.context.get("count", 0)) + 1
    return out


def read_calls(path: str | os.PathLike[str]) -> list[Call]:
    """Every call ``log_call`` logged to ``path``, in the order they started."""
    calls = []
    with open(path, encoding="utf-8") as log:
        for line in log:
            session, event_id, n, agent, pid = line.split()
            calls.append(Call(session, event_id, int(n), agent, int(pid)))
    return calls
