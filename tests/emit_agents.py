"""Handlers and callbacks that emit events from inside (tests/test_emit_inside.py): the
patterns of chaining, broadcast and an ``agent_error`` callback that emits a retry event."""

from __future__ import annotations

import collections
from typing import Any

from agentflow import CallbackArgs, Event, State
from agentflow.activities.emit import broadcast, emit
from agentflow.client.inputs import make_event as new_event

# Attempts per event id of ``flaky`` (the worker runs in the test's process).
_ATTEMPTS: collections.Counter[str] = collections.Counter()


def _count(state: State, agent: str) -> State:
    """The session's context counts each agent's runs: repeats would show."""
    out = state.clone()
    runs = dict(out.context.get("runs", {}))
    runs[agent] = runs.get(agent, 0) + 1
    out.context["runs"] = runs
    return out


def chain(event: Event, state: State) -> State:
    """A sync handler that hands on to ``record`` by emitting (chaining)."""
    child = emit("record", {"from": "chain", "n": state.data.get("n", 0) + 1})
    out = _count(state, "chain")
    out.data["children"] = [child.id]
    return out


async def fan(event: Event, state: State) -> State:
    """An async handler that broadcasts to ``record`` and ``other``."""
    children = broadcast(["record", "other"], {"from": "fan"})
    out = _count(state, "fan")
    out.data["children"] = [child.id for child in children]
    return out


def record(event: Event, state: State) -> State:
    out = _count(state, event.target_agent or "record")
    out.data["parent"] = event.metadata.get("parent_event_id", "")
    out.data["source"] = event.source_agent
    return out


def other(event: Event, state: State) -> State:
    return _count(state, "other")


def flaky(event: Event, state: State) -> State:
    """Emits, then fails its first attempt: the retry emits the same event again."""
    child = emit("record", {"from": "flaky"})
    _ATTEMPTS[event.id] += 1
    if _ATTEMPTS[event.id] == 1:
        raise RuntimeError("temporary glitch after the emit")
    out = _count(state, "flaky")
    out.data["children"] = [child.id]
    return out


def fails(event: Event, state: State) -> State:
    """Fails (retryably) unless this is the retry that ``retry_on_error`` emitted."""
    if event.metadata.get("retry") != "true":
        raise ConnectionError("connection reset (temporary)")
    return _count(state, "fails")


def retry_on_error(args: CallbackArgs) -> None:
    """An ``agent_error`` callback: a retryable error emits a retry event to the same agent,
    in the same session (once, however many attempts fail)."""
    if args.agent != "fails" or "temporary" not in (args.error or ""):
        return
    emit(new_event(args.agent, args.state.data, {
        "retry": "true", "original_event_id": args.event.id,
        "session_id": args.event.session_id, "route": args.agent,
    }))  # fmt: skip


def bad_target(event: Event, state: State) -> None:
    emit(state.data.get("to", "nope"), {}, session_id=state.data.get("session"))


def elsewhere(event: Event, state: State) -> dict[str, Any]:
    """Emits into another session, with the metadata keys that set priority and route."""
    child = emit("record", {"from": "elsewhere"}, session_id=state.data["session"],
                 metadata={"priority": "high", "timeout": "5m"})  # fmt: skip
    return {"children": [child.id]}
