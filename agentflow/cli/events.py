"""The CLI's event commands: ``emit``, ``session show|list|close``, ``dead-letters ...``.

Kept apart from cli.py (a small dispatcher), like observe.py and replay.py. The library they
call is ``agentflow.sessions`` (emit, sessions) and ``agentflow.dead_letters``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from agentflow import names
from agentflow.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    connected,
    connection_flag,
    format_result,
    print_json,
    read_input,
    result_json,
)
from agentflow.client import dead_letters, sessions, visibility
from agentflow.client.connection import ui_url
from agentflow.client.runner import Runner
from agentflow.config import DEFAULT_CONFIG_FILE, FlowConfig, load_config
from agentflow.errors import AgentflowError, ConfigError
from agentflow.inspect.replay import parse_duration
from agentflow.models.flow import PRIORITY_KEYS, Event
from agentflow.models.session import EventOutcome, SessionView
from agentflow.names import session_workflow_id

# A query is answered in milliseconds by a live worker; longer means none is answering.
QUERY_TIMEOUT_SECONDS = 5.0
UPDATE_TIMEOUT_SECONDS = dead_letters.DECISION_TIMEOUT_SECONDS
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")
_OK_OUTCOMES = ("completed", "handled")

FlowCommand = Callable[[Client, argparse.Namespace, FlowConfig], Awaitable[int]]


def add_commands(commands: Any) -> None:
    """Register ``emit``, ``session`` and ``dead-letters`` on cli.py's subparsers."""
    _add_emit(commands)
    _add_session(commands)
    _add_dead_letters(commands)


def _flow_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG_FILE,
        help="the flow's agentflow.toml (its name and [temporal] table)",
    )  # fmt: skip


def _by_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", help="who decides, recorded with the decision (default: OS user)")


# --- emit ---------------------------------------------------------------------------------


def _add_emit(commands: Any) -> None:
    cmd = commands.add_parser(
        "emit", help="emit an event into a session; returns once Temporal has recorded it"
    )
    _flow_flag(cmd)
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
    runner = Runner.from_config(args.config, task_queue=args.task_queue)
    within = parse_duration(args.within, "--within") if args.within is not None else None
    event = sessions.new_event(
        runner.config, data, session_id=args.session, target=args.target,
        priority=args.priority, deadline=parse_deadline(args.deadline), within=within,
        event_id=args.event_id,
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
        print(f"event {event.id} → {where}\n  {ui_url(client, workflow_id)}", flush=True)
    handle = await sessions.emit(client, runner.config, runner.task_queue, event, wait=args.wait)
    if args.wait:
        return _print_outcome(await handle.outcome(), event.session_id, workflow_id, args.json)
    if args.json:
        print_json({"event_id": event.id, "session": event.session_id,
                     "workflow_id": workflow_id, "status": "queued"})  # fmt: skip
    else:
        print(f"queued event {event.id} in {where}\n  {ui_url(client, workflow_id)}")
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


# --- session ------------------------------------------------------------------------------


def _add_session(commands: Any) -> None:
    group = commands.add_parser("session", help="show, list or close sessions")
    sub = group.add_subparsers(dest="session_command", required=True, metavar="COMMAND")

    cmd = sub.add_parser("show", help="a session's status, queue, counts and context")
    cmd.add_argument("session", help="session id")
    _flow_flag(cmd)
    cmd.add_argument("--json", action="store_true", help="print exactly one JSON object")
    cmd.set_defaults(func=_with_flow(_session_show))

    cmd = sub.add_parser("list", help="sessions, through Temporal visibility")
    cmd.add_argument("--flow", help="only sessions of this flow")
    cmd.add_argument("--status", help=", ".join(visibility.SESSION_STATUSES))
    cmd.add_argument("--limit", type=int, default=50)
    cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    connection_flag(cmd)
    cmd.set_defaults(func=_session_list_command)

    cmd = sub.add_parser("close", help="finish a session's queued events, then end it")
    cmd.add_argument("session", help="session id")
    _flow_flag(cmd)
    _by_flag(cmd)
    cmd.set_defaults(func=_with_flow(_session_close))


def _with_flow(command: FlowCommand) -> Callable[[argparse.Namespace], int]:
    """Load the flow's config (exit 2 if it is bad, before connecting), then connect."""

    def run(args: argparse.Namespace) -> int:
        config = load_config(args.config, check_handlers=False)
        return connected(args, lambda client, args: command(client, args, config))

    return run


async def _session_show(client: Client, args: argparse.Namespace, config: FlowConfig) -> int:
    view = await session_view(client, config.name, args.session)
    workflow_id = session_workflow_id(config.name, args.session)
    if args.json:
        body = {"workflow_id": workflow_id, **view.model_dump(mode="json")}
        body["counts"]["queued"] = len(view.queued)
        print_json(body)
    else:
        print(format_session(view))
        print(f"  {ui_url(client, workflow_id)}")
    return EXIT_OK


async def session_view(client: Client, flow: str, session: str) -> SessionView:
    """``sessions.session_view``, with one clear line instead of a long wait when no worker
    is there to answer a running session's query."""
    handle = client.get_workflow_handle(session_workflow_id(flow, session))
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise AgentflowError(f"no session {session!r} of flow {flow!r}") from None
        raise
    queue, what = description.task_queue, f"answer what running session {session!r} holds"
    if description.status == WorkflowExecutionStatus.RUNNING:
        await visibility.require_workers(client, queue, what)
    view = sessions.session_view(client, flow, session)
    return await visibility.worker_answer(view, queue, what, QUERY_TIMEOUT_SECONDS)


def format_session(view: SessionView) -> str:
    counts = view.counts
    status = view.status + (f" ({view.closed_reason})" if view.closed_reason else "")
    last = view.last_event_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if (
        view.last_event_at) else "never"  # fmt: skip
    lines = [
        f"session {view.session_id} · flow {view.flow} · {status} · run {view.runs}",
        f"  current event: {view.current or '-'}",
        f"  counts: {counts.emitted} emitted · {counts.completed} completed · "
        f"{counts.handled} handled · {counts.dead_lettered} dead-lettered · "
        f"{counts.duplicates} duplicates · {len(view.queued)} queued",
        f"  last event: {last}",
    ]
    if view.queued:
        lines.append("  queued, next first:")
    for queued in sorted(view.queued, key=lambda q: (PRIORITY_KEYS[q.priority], q.seq)):
        deadline = f"  deadline {queued.deadline.isoformat()}" if queued.deadline else ""
        lines.append(f"    #{queued.seq} {queued.event_id}  {queued.priority}{deadline}")
    context = json.dumps(view.context, indent=2, ensure_ascii=False).replace("\n", "\n  ")
    lines.append(f"  context: {context}")
    return "\n".join(lines)


def _session_list_command(args: argparse.Namespace) -> int:
    query = visibility.session_query(args.flow, args.status)  # a bad --status: exit 2 first
    if args.limit < 1:
        raise ConfigError(f"--limit: must be at least 1, got {args.limit}")
    return connected(args, lambda client, args: _session_list(client, args, query))


async def _session_list(client: Client, args: argparse.Namespace, query: str) -> int:
    async for row in list_sessions(client, query, args.limit):
        if args.json:
            print_json(row)
        else:
            started = datetime.fromisoformat(row["start_time"]).astimezone()
            print(f"{started:%Y-%m-%d %H:%M:%S}  {row['status']:<10} {row['flow']}  "
                  f"{row['session']}")  # fmt: skip
    return EXIT_OK


async def list_sessions(client: Client, query: str, limit: int) -> Any:
    """One row per session, newest first. A closed session reopened by a later emit has two
    rows in visibility (one per start); only its latest is shown."""
    seen: set[str] = set()
    try:
        async for execution in client.list_workflows(query):
            if execution.id in seen or not await _latest(client, execution):
                continue
            seen.add(execution.id)
            yield _session_row(execution)
            if len(seen) >= limit:
                return
    except RPCError as err:
        raise visibility.missing_attribute_error(err, client.namespace) or err from None


async def _latest(client: Client, execution: WorkflowExecution) -> bool:
    if execution.status == WorkflowExecutionStatus.RUNNING:
        return True  # a running session is always the latest start of its id
    description = await client.get_workflow_handle(execution.id).describe()
    return description.run_id == execution.run_id


def _session_row(execution: WorkflowExecution) -> dict[str, Any]:
    attrs = execution.typed_search_attributes
    status = visibility.status_name(execution.status)
    return {
        "session": attrs.get(names.SESSION),
        "flow": attrs.get(names.FLOW),
        "status": "closed" if status == "completed" else status,
        "workflow_id": execution.id,
        "run_id": execution.run_id,
        "start_time": execution.start_time.isoformat(),
        "close_time": execution.close_time.isoformat() if execution.close_time else None,
    }


async def _session_close(client: Client, args: argparse.Namespace, config: FlowConfig) -> int:
    handle = client.get_workflow_handle(session_workflow_id(config.name, args.session))
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise AgentflowError(f"no session {args.session!r} of flow {config.name!r}") from None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        print(f"session {args.session} is already closed")
        return EXIT_OK
    queue, what = description.task_queue, f"close session {args.session!r}"
    await visibility.require_workers(client, queue, what)
    by = args.by or dead_letters.default_actor()
    closing = sessions.close_session(client, config.name, args.session, by)
    view = await visibility.worker_answer(closing, queue, what, UPDATE_TIMEOUT_SECONDS)
    waiting = len(view.queued) + (1 if view.current else 0)
    first = f" once its {waiting} pending event(s) are done" if waiting else ""
    print(f"session {args.session} closes{first}; its context stays readable with "
          f"`agentflow session show {args.session}`, and the next emit reopens it with that "
          "context")  # fmt: skip
    return EXIT_OK


# --- dead letters -------------------------------------------------------------------------


def _add_dead_letters(commands: Any) -> None:
    group = commands.add_parser("dead-letters", help="list, show, redrive or purge dead letters")
    sub = group.add_subparsers(dest="letters_command", required=True, metavar="COMMAND")

    cmd = sub.add_parser("list", help="open dead letters (--all: decided ones too)")
    cmd.add_argument("--session")
    cmd.add_argument("--flow")
    cmd.add_argument("--all", action="store_true", help="include redriven and purged letters")
    cmd.add_argument("--limit", type=int, default=100)
    cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    connection_flag(cmd)
    cmd.set_defaults(func=lambda args: connected(args, _letters_list))

    cmd = sub.add_parser("show", help="one dead letter: its event, the error, its state")
    cmd.add_argument("id", help="dead letter id (its workflow id)")
    cmd.add_argument("--json", action="store_true", help="print exactly one JSON object")
    connection_flag(cmd)
    cmd.set_defaults(func=lambda args: connected(args, _letters_show))

    cmd = sub.add_parser("redrive", help="emit a letter's event again into its session")
    cmd.add_argument("id", nargs="?", help="dead letter id")
    cmd.add_argument("--all", action="store_true", help="every open letter of the flow")
    cmd.add_argument("--session", help="with --all: only this session's letters")
    _flow_flag(cmd)
    _by_flag(cmd)
    cmd.set_defaults(func=_letters_redrive)

    cmd = sub.add_parser("purge", help="close a letter without processing its event")
    cmd.add_argument("id", nargs="?", help="dead letter id")
    cmd.add_argument("--all", action="store_true", help="every open letter")
    cmd.add_argument("--session", help="with --all: only this session's letters")
    cmd.add_argument("--flow", help="with --all: only this flow's letters")
    connection_flag(cmd)
    _by_flag(cmd)
    cmd.set_defaults(func=_letters_purge)


async def _letters_list(client: Client, args: argparse.Namespace) -> int:
    rows = dead_letters.list_letters(client, args.session, args.flow,
                                     include_decided=args.all, limit=args.limit)  # fmt: skip
    async for row in rows:
        if args.json:
            print_json(row.model_dump(mode="json"))
            continue
        when = row.dead_lettered_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if (
            row.dead_lettered_at) else "-"  # fmt: skip
        agent = f"  agent {row.failed_agent}" if row.failed_agent else ""
        agent += f"  → {row.redriven_as}" if row.redriven_as else ""
        error = (row.error or "").splitlines()[0][:100] if row.error else ""
        print(f"{when}  {row.status:<9} {row.reason or '?':<18} {row.id}{agent}  {error}")
    return EXIT_OK


async def _letters_show(client: Client, args: argparse.Namespace) -> int:
    record = await dead_letters.read_letter(client, args.id)
    if args.json:
        print_json({**record.view.model_dump(mode="json"), "status": record.status,
                     "task_queue": record.task_queue})  # fmt: skip
    else:
        print(format_letter(record))
        print(f"  {ui_url(client, args.id)}")
    return EXIT_OK


def format_letter(record: dead_letters.LetterRecord) -> str:
    view, letter = record.view, record.view.letter
    lines = [f"dead letter {letter.id}: {record.status}",
             f"  flow {letter.flow} · session {letter.session_id}",
             f"  reason: {letter.reason}"]  # fmt: skip
    if letter.failed_agent:
        lines.append(f"  agent: {letter.failed_agent} (attempt {letter.attempts}, "
                     f"{letter.error_type or 'error'})")  # fmt: skip
    lines.append("  error: " + (letter.error or "").replace("\n", "\n    "))
    lines.append(f"  dead-lettered at {letter.dead_lettered_at.isoformat()}")
    if letter.redrive_of:
        lines.append(f"  it was the redrive of {letter.redrive_of}")
    if letter.event is not None:
        event = letter.event
        lines.append(f"  event {event.id} (priority {event.priority}"
                     f"{', target ' + event.target_agent if event.target_agent else ''}): "
                     f"{json.dumps(event.data, ensure_ascii=False)}")  # fmt: skip
    else:
        lines.append(f"  what arrived: {letter.raw}")
    if letter.state is not None:
        lines.append(f"  last state: {letter.state.model_dump_json()}")
    if view.status != "open":
        by = f" by {view.decided_by}" if view.decided_by else ""
        when = view.decided_at.isoformat() if view.decided_at else ""
        lines.append(f"  {view.status}{' as ' + view.redriven_as if view.redriven_as else ''}"
                     f"{by} at {when}")  # fmt: skip
    return "\n".join(lines)


def _one_or_all(args: argparse.Namespace, command: str) -> None:
    if bool(args.id) == bool(args.all):
        raise ConfigError(f"dead-letters {command}: give one dead letter id or --all")
    if args.id and (args.session or getattr(args, "flow", None)):
        raise ConfigError(f"dead-letters {command}: --session and --flow go with --all")


def _letters_redrive(args: argparse.Namespace) -> int:
    _one_or_all(args, "redrive")
    config = load_config(args.config)  # the flow the events run in now: checked like `run`
    by = args.by or dead_letters.default_actor()

    async def one(client: Client, letter_id: str) -> dead_letters.Decision:
        return await dead_letters.redrive(client, config, letter_id, by)

    return connected(args, lambda client, args: _decide(client, args, config.name, one))


def _letters_purge(args: argparse.Namespace) -> int:
    _one_or_all(args, "purge")
    by = args.by or dead_letters.default_actor()

    async def one(client: Client, letter_id: str) -> dead_letters.Decision:
        return await dead_letters.purge(client, letter_id, by)

    return connected(args, lambda client, args: _decide(client, args, args.flow, one))


Decide = Callable[[Client, str], Awaitable["dead_letters.Decision"]]


async def _decide(client: Client, args: argparse.Namespace, flow: str | None, one: Decide) -> int:
    if args.id:
        print(_decision_line(await one(client, args.id)))
        return EXIT_OK
    # The ids first: deciding closes letters, which would shift a listing read page by page.
    rows = [row async for row in dead_letters.list_letters(client, args.session, flow)]
    failed = 0
    for row in rows:
        try:
            print(_decision_line(await one(client, row.id)), flush=True)
        except AgentflowError as err:
            failed += 1
            print(f"✗ {row.id}: {err}", flush=True)
    print(_summary(args, flow, len(rows), failed))
    return EXIT_FAILED if failed else EXIT_OK


def _summary(args: argparse.Namespace, flow: str | None, total: int, failed: int) -> str:
    scope = f"flow {flow}" if flow else "all flows"
    scope += f", session {args.session}" if args.session else ""
    if not total:
        return f"no open dead letters ({scope})"
    done = {"redrive": "redriven", "purge": "purged"}[args.letters_command]
    return (f"{total - failed} of {total} open dead letters {done} ({scope})"
            + (f"; {failed} could not be" if failed else ""))  # fmt: skip


def _decision_line(decision: dead_letters.Decision) -> str:
    view = decision.view
    by = f" by {view.decided_by}" if view.decided_by else ""
    when = f" at {view.decided_at.isoformat()}" if view.decided_at else ""
    if decision.outcome == "redriven":
        return (f"redriven {decision.letter_id} as event {decision.event_id} "
                f"into session {view.letter.session_id}")  # fmt: skip
    if decision.outcome == "already redriven":
        return f"{decision.letter_id}: already redriven as event {view.redriven_as}{by}{when}"
    if decision.outcome == "purged":
        return f"purged {decision.letter_id}"
    return f"{decision.letter_id}: already purged{by}{when}"
