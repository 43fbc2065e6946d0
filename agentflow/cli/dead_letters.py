"""``agentflow dead-letters list|show|redrive|purge``: the library they call is
agentflow/client/dead_letters.py."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client

from agentflow.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    by_flag,
    connected,
    connection_flag,
    flow_flag,
    link,
    print_json,
    require_workflow,
)
from agentflow.client import dead_letters
from agentflow.config import load_config
from agentflow.errors import AgentflowError, ConfigError


def add_commands(commands: Any) -> None:
    """Register ``dead-letters list|show|redrive|purge`` on main.py's subparsers."""
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
    flow_flag(cmd)
    by_flag(cmd)
    cmd.set_defaults(func=_letters_redrive)

    cmd = sub.add_parser("purge", help="close a letter without processing its event")
    cmd.add_argument("id", nargs="?", help="dead letter id")
    cmd.add_argument("--all", action="store_true", help="every open letter")
    cmd.add_argument("--session", help="with --all: only this session's letters")
    cmd.add_argument("--flow", help="with --all: only this flow's letters")
    connection_flag(cmd)
    by_flag(cmd)
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
    record = await read_letter(client, args.id)
    if args.json:
        print_json({**record.view.model_dump(mode="json"), "status": record.status,
                    "task_queue": record.task_queue})  # fmt: skip
    else:
        print(format_letter(record))
        print(f"  {link(client, args, args.id, record.run_id)}")
    return EXIT_OK


async def read_letter(client: Client, letter_id: str) -> dead_letters.LetterRecord:
    """``dead_letters.read_letter``, with the not-found rule of agentflow/cli/_common.py."""
    try:
        return await dead_letters.read_letter(client, letter_id)
    except AgentflowError:
        await require_workflow(client, letter_id, "dead letter", letter_id)
        raise  # it exists: the library's own reason stands (e.g. not a dead letter)


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
        try:
            decision = await one(client, args.id)
        except AgentflowError:
            await require_workflow(client, args.id, "dead letter", args.id)
            raise
        print(_decision_line(decision))
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
