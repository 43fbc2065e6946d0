"""``agentflow emit``: an event into a session, through ``Runner.new_event`` and
``Runner.emit_event`` (what ``Runner.emit`` does in one call)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import datetime
from typing import Any

from agentflow.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    flow_flag,
    flow_runner,
    format_result,
    link,
    print_json,
    read_input,
    result_json,
)
from agentflow.client.runner import Runner
from agentflow.errors import ConfigError
from agentflow.inspect.replay import parse_duration
from agentflow.models.flow import Event
from agentflow.models.session import EventOutcome
from agentflow.names import session_workflow_id

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")
_OK_OUTCOMES = ("completed", "handled")


def add_command(commands: Any) -> None:
    """Register ``emit`` on main.py's subparsers."""
    cmd = commands.add_parser(
        "emit", help="emit an event into a session; returns once Temporal has recorded it"
    )
    flow_flag(cmd)
    cmd.add_argument("--session", help="session id (default: the event id, a session of one)")
    cmd.add_argument("--input", default="{}", help="JSON object, @file.json, or @- for stdin")
    cmd.add_argument("--target", help="agent that receives the event (route mode)")
    cmd.add_argument("--priority", default="normal", help="low, normal, high or critical")
    cmd.add_argument("--deadline", help="RFC 3339 time it must start by: 2026-11-21T15:00:00Z")
    cmd.add_argument("--within", help="or: a duration it must start within: 90s, 30m, 2h, 1d")
    cmd.add_argument("--event-id", help="event id; an id the session has seen is not run again")
    cmd.add_argument("--task-queue", help="override [temporal] task_queue")
    cmd.add_argument("--wait", action="store_true", help="wait for the event's outcome")
    cmd.add_argument("--json", action="store_true", help="print exactly one JSON object")
    cmd.set_defaults(func=_emit)


def parse_deadline(text: str | None) -> datetime | None:
    """An RFC 3339 time with its UTC offset (``Z`` or ``+01:00``); a naive time is an error."""
    if text is None:
        return None
    found = _RFC3339.fullmatch(text.strip())
    if not found:
        raise ConfigError(f"--deadline: {text!r} is not an RFC 3339 time; use e.g. "
                          "2026-11-21T15:00:00Z or 2026-11-21T16:00:00+01:00")  # fmt: skip
    if found.group(2) is None:
        raise ConfigError(f"--deadline: {text!r} has no UTC offset; RFC 3339 requires one: "
                          "add Z (UTC) or an offset such as +01:00")  # fmt: skip
    try:  # Python 3.10's fromisoformat does not take "Z"
        return datetime.fromisoformat(re.sub("[Zz]$", "+00:00", text.strip()))
    except ValueError as err:
        raise ConfigError(f"--deadline: {text!r}: {err}") from None


def _emit(args: argparse.Namespace) -> int:
    # Everything is checked before connecting: bad input is exit 2 with no server around.
    data = read_input(args.input)
    runner = flow_runner(args, task_queue=args.task_queue)
    within = parse_duration(args.within, "--within") if args.within is not None else None
    event = runner.new_event(
        data, session_id=args.session, target=args.target, priority=args.priority,
        deadline=parse_deadline(args.deadline), within=within, event_id=args.event_id,
    )  # fmt: skip
    return asyncio.run(_emit_event(runner, event, args))


async def _emit_event(runner: Runner, event: Event, args: argparse.Namespace) -> int:
    client = await runner.client()
    workflow_id = session_workflow_id(runner.config.name, event.session_id)
    where = f"session {event.session_id} ({runner.config.name})"
    if not await runner.has_workers():
        print(f"agentflow: warning: no worker polls task queue {runner.task_queue!r}; the event "
              "waits in its session until one starts (agentflow worker --config ...)",
              file=sys.stderr, flush=True)  # fmt: skip
    if args.wait and not args.json:
        print(f"event {event.id} → {where}\n  {link(client, args, workflow_id)}", flush=True)
    handle = await runner.emit_event(event, wait=args.wait)
    if args.wait:
        return _print_outcome(await handle.outcome(), event.session_id, workflow_id, args.json)
    if args.json:
        print_json({"event_id": event.id, "session": event.session_id,
                    "workflow_id": workflow_id, "status": "queued"})  # fmt: skip
    else:
        print(f"queued event {event.id} in {where}\n  {link(client, args, workflow_id)}")
    return EXIT_OK


def _print_outcome(outcome: EventOutcome, session: str, workflow_id: str, as_json: bool) -> int:
    if as_json:
        result = None
        if outcome.result is not None:
            # A session's events span its runs, so there is no one run id to name.
            result = result_json(workflow_id, "", outcome.result)
            del result["run_id"]
        print_json({"event_id": outcome.event_id, "session": session, "workflow_id": workflow_id,
                    "status": outcome.status, "result": result,
                    "dead_letter_id": outcome.dead_letter_id, "reason": outcome.reason,
                    "error": outcome.error})  # fmt: skip
    else:
        print(format_outcome(outcome))
    return EXIT_OK if outcome.status in _OK_OUTCOMES else EXIT_FAILED


def format_outcome(outcome: EventOutcome) -> str:
    """What ``emit --wait`` prints: the flow's result, or why the event went to dead letters."""
    head = f"event {outcome.event_id or '(unreadable)'}: {outcome.status.replace('_', '-')}"
    if outcome.status == "dead_lettered":
        return (f"{head} ({outcome.reason})\nerror: {outcome.error}\n"
                f"dead letter: {outcome.dead_letter_id}\n"
                f"  agentflow dead-letters show '{outcome.dead_letter_id}'")  # fmt: skip
    if outcome.result is not None:
        handled = f" by {outcome.result.handled_by}" if outcome.result.handled_by else ""
        return f"{head}{handled}\n{format_result(outcome.result)}"
    return head + (f": {outcome.reason}" if outcome.reason else "")
