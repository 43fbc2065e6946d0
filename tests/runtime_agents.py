"""Handlers and [hooks] callbacks for tests/test_event_runtime.py.

Calls are recorded in ``CALLS`` (the tests' workers run in-process), keyed by the event's
session, so tests running side by side never see each other's calls.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from agentflow import CallbackArgs, Event, FatalError, State

CALLS: defaultdict[str, list[str]] = defaultdict(list)


def _note(session: str, line: str) -> None:
    CALLS[session].append(line)


def step(event: Event, state: State) -> dict[str, Any]:
    """Appends its name to data["trail"] and the event's n to context["seen"]."""
    _note(event.session_id, f"{event.target_agent}:{state.data.get('n')}")
    time.sleep(float(state.data.get("sleep", 0)))
    if state.data.get("fail") == event.target_agent:
        raise FatalError(f"{event.target_agent} was told to fail")
    if state.data.get("fail_retryable") == event.target_agent:
        raise ConnectionError("the service is down")
    if state.data.get("bad_output") == event.target_agent:
        return 42  # type: ignore[return-value]
    state.context["seen"] = [*state.context.get("seen", []), state.data.get("n")]
    return {"trail": [*state.data.get("trail", []), event.target_agent]}


def error_handler(event: Event, state: State) -> dict[str, Any]:
    """An [error_routing] handler: records what it was told."""
    _note(event.session_id, f"handler:{state.data['failed_agent']}:{state.data['error_type']}")
    return {"handled": True}


def failing_handler(event: Event, state: State) -> None:
    raise FatalError("the handler cannot cope either")


def tag_event(args: CallbackArgs) -> State:
    """before_event_handling: marks the state, or rejects events with data["reject"]."""
    _note(args.event.session_id, f"{args.hook}")
    if args.state.data.get("reject") == args.hook:
        raise FatalError("rejected on purpose")
    state = args.state.clone()
    state.data["tagged"] = [*state.data.get("tagged", []), args.hook]
    return state


def agent_hook(args: CallbackArgs) -> State | None:
    """before/after_agent_run and agent_error: records the call; rejects on request."""
    _note(args.event.session_id, f"{args.hook}:{args.agent}:{args.error_type or ''}")
    if args.state.data.get("reject") == f"{args.hook}:{args.agent}":
        raise FatalError("agent hook says no")
    if args.hook == "after_agent_run":
        state = args.state.clone()
        state.data["after"] = [*state.data.get("after", []), args.agent]
        return state
    return None


def every_hook(args: CallbackArgs) -> None:
    """An ``all`` callback: runs at every point, after the point's own callbacks."""
    _note(args.event.session_id, f"all:{args.hook}")


def wrong_return(args: CallbackArgs) -> int:
    return 7


def tick(event: Event, state: State) -> State:
    """A loop agent: counts its iterations in context["ticks"] (committed per event)."""
    out = state.clone()
    out.context["ticks"] = int(state.context.get("ticks", 0)) + 1
    return out
