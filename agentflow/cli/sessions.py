"""``agentflow session show|list|close``: the library they call is agentflow/client/sessions.py
(``session_view``, ``close_session``) and agentflow/client/visibility.py."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime
from typing import Any

from temporalio.client import Client

from agentflow.cli._common import (
    EXIT_OK,
    NotFoundError,
    by_flag,
    connected,
    connection_flag,
    flow_flag,
    link,
    print_json,
    require_workflow,
    with_flow,
)
from agentflow.client import dead_letters, visibility
from agentflow.client.sessions import close_if_running, list_sessions
from agentflow.client.sessions import session_view as read_session
from agentflow.config import FlowConfig
from agentflow.errors import AgentflowError, ConfigError
from agentflow.errors import NotFoundError as LibraryNotFound
from agentflow.models.flow import PRIORITY_KEYS
from agentflow.models.session import SessionView
from agentflow.names import session_workflow_id

# A query is answered in milliseconds by a live worker; longer means none is answering.
QUERY_TIMEOUT_SECONDS = 5.0
UPDATE_TIMEOUT_SECONDS = dead_letters.DECISION_TIMEOUT_SECONDS


def add_commands(commands: Any) -> None:
    """Register ``session show|list|close`` on main.py's subparsers."""
    group = commands.add_parser("session", help="show, list or close sessions")
    sub = group.add_subparsers(dest="session_command", required=True, metavar="COMMAND")

    cmd = sub.add_parser("show", help="a session's status, queue, counts and context")
    cmd.add_argument("session", help="session id")
    flow_flag(cmd)
    cmd.add_argument("--json", action="store_true", help="print exactly one JSON object")
    cmd.set_defaults(func=with_flow(_session_show))

    cmd = sub.add_parser("list", help="sessions, through Temporal visibility")
    cmd.add_argument("--flow", help="only sessions of this flow")
    cmd.add_argument("--status", help=", ".join(visibility.SESSION_STATUSES))
    cmd.add_argument("--limit", type=int, default=50)
    cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    connection_flag(cmd)
    cmd.set_defaults(func=_session_list_command)

    cmd = sub.add_parser("close", help="finish a session's queued events, then end it")
    cmd.add_argument("session", help="session id")
    flow_flag(cmd)
    by_flag(cmd)
    cmd.set_defaults(func=with_flow(_session_close))


async def _session_show(client: Client, args: argparse.Namespace, config: FlowConfig) -> int:
    view = await session_view(client, config.name, args.session)
    workflow_id = session_workflow_id(config.name, args.session)
    if args.json:
        body = {"workflow_id": workflow_id, **view.model_dump(mode="json")}
        body["counts"]["queued"] = len(view.queued)
        print_json(body)
    else:
        print(format_session(view))
        print(f"  {link(client, args, workflow_id)}")
    return EXIT_OK


async def session_view(client: Client, flow: str, session: str) -> SessionView:
    """``sessions.session_view`` (which describes the session once), with one clear line
    instead of a long wait when no worker answers a running session's query, and the
    not-found rule of agentflow/cli/_common.py."""
    workflow_id = session_workflow_id(flow, session)
    try:
        return await asyncio.wait_for(read_session(client, flow, session), QUERY_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:  # only a query waits: the session runs and nothing answers
        description = await require_workflow(client, workflow_id, "session", session, flow)
        queue, what = description.task_queue, f"answer what running session {session!r} holds"
        await visibility.require_workers(client, queue, what)  # none polls: that says why
        raise AgentflowError(
            f"no worker answered within {QUERY_TIMEOUT_SECONDS:g}s to {what}; one must run "
            f"on task queue {queue!r} (agentflow worker --config ...)"
        ) from None
    except AgentflowError:
        await require_workflow(client, workflow_id, "session", session, flow)
        raise  # it exists: the library's own reason stands


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


async def _session_close(client: Client, args: argparse.Namespace, config: FlowConfig) -> int:
    by = args.by or dead_letters.default_actor()
    try:
        view = await close_if_running(client, config.name, args.session, by,
                                      UPDATE_TIMEOUT_SECONDS)  # fmt: skip
    except LibraryNotFound:  # the not-found rule of agentflow/cli/_common.py
        raise NotFoundError("session", args.session, client.namespace, config.name) from None
    if view is None:
        print(f"session {args.session} is already closed")
        return EXIT_OK
    waiting = len(view.queued) + (1 if view.current else 0)
    first = f" once its {waiting} pending event(s) are done" if waiting else ""
    print(f"session {args.session} closes{first}; its context stays readable with "
          f"`agentflow session show {args.session}`, and the next emit reopens it with that "
          "context")  # fmt: skip
    return EXIT_OK
