"""The soak's handlers and tool, run by the worker processes. Every call appends one line to
the worker's own ledger file (``$SOAK_LEDGER/ledger-PID.tsv``): what ran, for which key, in
which process, when. The soak counts keys that ran twice from these files."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agentflow import Event, State, emit

LEDGER_ENV = "SOAK_LEDGER"


def ledger_line(kind: str, key: str) -> None:
    """One write on an O_APPEND descriptor: lines of concurrent calls never mix."""
    folder = os.environ.get(LEDGER_ENV)
    if not folder:
        return
    line = f"{kind}\t{key}\t{os.getpid()}\t{time.time():.3f}\n"
    fd = os.open(Path(folder) / f"ledger-{os.getpid()}.tsv",
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)  # fmt: skip
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def step(event: Event, state: State) -> State:
    """A no-op agent that records its call: key, agent, and how often this agent has run in
    this run (a loop runs it again on its own output). Sleeps ``data["sleep"]`` seconds so a
    kill can land mid-agent; in a session counts the events in ``context["count"]``."""
    agent = event.target_agent or "?"
    runs = int(state.data.get(f"n_{agent}", 0))
    ledger_line("agent", f"{state.data.get('key', event.id)}:{agent}:{runs}")
    time.sleep(float(state.data.get("sleep", 0)))
    out = state.clone()
    out.data[f"n_{agent}"] = runs + 1
    loops = int(state.data.get("loops", 0))
    if loops:
        out.data["loop_complete"] = runs + 1 >= loops
    if event.session_id and agent == state.data.get("last"):
        out.context["count"] = int(state.context.get("count", 0)) + 1
    return out


def triage(event: Event, state: State) -> State:
    """The route mode's entry: records its call, then hands on to ``data["to"]``."""
    out = step(event, state)
    out.meta["route"] = str(state.data.get("to", "finish"))
    return out


def lookup(key: str) -> str:
    """Look a key up in the soak's records (the LLM agents' tool: records each call).

    Args:
        key: what to look up
    """
    ledger_line("tool", key)
    return f"found {key}"


def prepare(event: Event, state: State) -> State:
    """The long conversation's first agent: the prompt is the whole conversation so far (the
    context grows by one turn each event) and the new user message."""
    ledger_line("agent", f"{state.data['key']}:prepare:0")
    turns = list(state.context.get("turns", []))
    out = state.clone()
    out.data["message"] = "\n".join([*turns, f"user [conv:{state.data['key']}] turn "
                                     f"{state.data['turn']}"])  # fmt: skip
    return out


def remember(event: Event, state: State) -> State:
    """The long conversation's last agent: appends the turn and the model's reply."""
    ledger_line("agent", f"{state.data['key']}:remember:0")
    out = state.clone()
    reply = str(state.data.get("chat", ""))
    out.context["turns"] = [*state.context.get("turns", []),
                            f"user turn {state.data['turn']}", f"assistant {reply}"]  # fmt: skip
    out.data.pop("message", None)
    return out


def heard(event: Event, state: State) -> State:
    """A bus subscriber: records the delivery, and its place in its key's order."""
    out = step(event, state)
    agent = event.target_agent or "?"
    ledger_line("order", f"{agent}:{state.data.get('pkey')}:{state.data.get('seq')}")
    return out


def stray(event: Event, state: State) -> State:
    """Bad input: emits to an agent its flow does not have (the emit refuses it, failing this
    agent at once: the event becomes a dead letter)."""
    ledger_line("agent", f"{state.data.get('key', event.id)}:stray:0")
    emit("nobody", {"from": "stray"})
    return state
