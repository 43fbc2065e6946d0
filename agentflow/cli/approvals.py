"""The CLI's approval commands: ``approve``, ``reject`` and ``pending``.

The library they call is agentflow/client/approvals.py.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from temporalio.client import Client

from agentflow.cli._common import (
    EXIT_OK,
    connected,
    connection_flag,
    find_run,
    link,
    print_json,
    require_session_runs,
)
from agentflow.client import approvals
from agentflow.errors import AgentflowError, ConfigError
from agentflow.models.approval import Approval


def add_commands(commands: Any) -> None:
    """Register ``approve``, ``reject`` and ``pending`` on cli.py's subparsers."""
    for verb, help_ in (("approve", "let an agent that waits for approval go on"),
                        ("reject", "turn down what an agent waits for: it fails")):  # fmt: skip
        cmd = commands.add_parser(verb, help=help_)
        cmd.add_argument("run", nargs="?", metavar="RUN",
                         help="workflow id of the run, or of the session, that waits")  # fmt: skip
        cmd.add_argument("--session", help="or: the session whose run waits")
        cmd.add_argument("--agent", help="the agent (or approval id) if several wait")
        if verb == "approve":
            cmd.add_argument("--comment", default="", help="recorded with the decision")
        else:
            cmd.add_argument("--reason", required=True, help="why; recorded with the decision")
        cmd.add_argument("--by", help="who decides (default: the OS user)")
        cmd.add_argument("--json", action="store_true", help="print exactly one JSON object")
        connection_flag(cmd)
        cmd.set_defaults(func=_decide)

    cmd = commands.add_parser("pending", help="approvals that wait, across runs and sessions")
    cmd.add_argument("--session", help="only this session's")
    cmd.add_argument("--flow", help="only this flow's")
    cmd.add_argument("--limit", type=int, default=100, help="at most this many runs")
    cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    connection_flag(cmd)
    cmd.set_defaults(func=_pending_command)


def _decide(args: argparse.Namespace) -> int:
    if bool(args.run) == bool(args.session):
        raise ConfigError(f"{args.command}: give the RUN's workflow id or --session (one)")
    approve = args.command == "approve"
    # Checked before connecting: bad input is exit 2 with no server around.
    request = approvals.decision(approve, args.agent, args.by,
                                 args.comment if approve else args.reason)  # fmt: skip

    async def send(client: Client, args: argparse.Namespace) -> int:
        if args.run:
            workflow_id, _ = await find_run(client, args.run)
        else:
            try:
                workflow_id = await approvals.waiting_in_session(client, args.session)
            except AgentflowError:
                await require_session_runs(client, args.session)
                raise  # the session exists: nothing (or too much) in it waits
        approval = await approvals.decide(client, workflow_id, request)
        if args.json:
            print_json({"workflow_id": workflow_id, **approval.model_dump(mode="json")})
        else:
            print(decision_line(workflow_id, approval))
            print(f"  {link(client, args, workflow_id)}")
        return EXIT_OK

    return connected(args, send)


def decision_line(workflow_id: str, approval: Approval) -> str:
    comment = f": {approval.comment}" if approval.comment else ""
    return (f"{approval.status} {approval.agent} in {workflow_id} (approval {approval.id}, "
            f"{approval.point}) by {approval.decided_by}{comment}")  # fmt: skip


def _pending_command(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ConfigError(f"--limit: must be at least 1, got {args.limit}")
    return connected(args, _pending)


async def _pending(client: Client, args: argparse.Namespace) -> int:
    found = 0
    async for row in approvals.pending(client, args.session, args.flow, args.limit):
        found += 1
        if args.json:
            print_json(row.model_dump(mode="json"))
        else:
            print(pending_line(row))
    if not found and not args.json:
        scope = ", ".join(f"{k} {v}" for k, v in (("flow", args.flow), ("session", args.session))
                          if v)  # fmt: skip
        print("no approvals waiting" + (f" ({scope})" if scope else ""))
    return EXIT_OK


def pending_line(row: approvals.PendingApproval) -> str:
    asked = row.asked_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    session = f"  session {row.session_id}" if row.session_id else ""
    timeout = ""
    if row.timeout_at is not None:
        left = (row.timeout_at - datetime.now(timezone.utc)).total_seconds()
        timeout = f"  ({row.on_timeout} in {max(left, 0):.0f}s)"
    return (f"{asked}  {row.workflow_id}  {row.agent} ({row.id}, {row.point}): {row.reason}"
            f"{timeout}{session}")  # fmt: skip
