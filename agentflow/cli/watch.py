"""``agentflow watch RUN | --session S [--from-offset N] [--json] [--no-tokens]``: a run's live
stream, one line per item (agentflow/streaming.py); and the live view of ``agentflow run``.

A watcher may join at any time: it reads the items the run kept (from offset 0, or from
``--from-offset``), then waits for new ones, and stops when the run has ended and everything
was read. A session's stream outlives its events: watching one stops when the session ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any, TextIO

from temporalio.client import Client

from agentflow.cli._common import (
    connected,
    connection_flag,
    find_run,
    find_session,
    flow_settings,
    print_json,
)
from agentflow.client import visibility
from agentflow.errors import ConfigError
from agentflow.models.stream import Streamed, StreamItem, stream

# After the run's result is in, how long ``agentflow run`` waits for the stream's last items.
DRAIN_SECONDS = 5.0
MARKS = {
    "flow_started": "▶", "flow_finished": "■", "started": "→", "completed": "✓", "failed": "✗",
    "retrying": "↻", "handoff": "⇢", "published": "✉", "approval_waiting": "⏸",
    "approval_decided": "⏵",
}  # fmt: skip


def add_command(commands: Any) -> None:
    """Register ``watch`` on cli.py's subparsers."""

    cmd = commands.add_parser("watch", help="follow a run's (or a session's) live stream")
    cmd.add_argument("run", nargs="?", help="workflow id or run id")
    cmd.add_argument("--session", help="watch this session instead (all its events)")
    cmd.add_argument("--from-offset", type=int, default=0, metavar="N",
                     help="start at this offset (each line shows its own; default 0)")  # fmt: skip
    cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    cmd.add_argument("--no-tokens", action="store_true", help="leave out LLM token batches")
    connection_flag(cmd)
    cmd.set_defaults(func=lambda args: connected(_checked(args), _watch))


def _checked(args: argparse.Namespace) -> argparse.Namespace:
    """Bad flags exit 2 before connecting."""
    if bool(args.run) == bool(args.session):
        raise ConfigError("watch: give a workflow/run id or --session ID (one of them)")
    if args.from_offset < 0:
        raise ConfigError(f"--from-offset: must be 0 or more, not {args.from_offset}")
    return args


async def _watch(client: Client, args: argparse.Namespace) -> int:
    if args.session:
        settings = flow_settings(args.config)  # its flow's name, if a config names one
        flow = settings.name if settings is not None else None
        workflow_id = await find_session(client, args.session, flow)
    else:
        workflow_id, _ = await find_run(client, args.run)
    description = await client.get_workflow_handle(workflow_id).describe()
    if not await visibility.has_workers(client, description.task_queue):
        print(f"agentflow: warning: no worker polls task queue {description.task_queue!r}; "
              "the stream is read through a worker, so this waits until one starts",
              file=sys.stderr, flush=True)  # fmt: skip
    items = stream(client, workflow_id, from_offset=args.from_offset, tokens=not args.no_tokens)
    async for streamed in items:
        if args.json:
            print_json(json_line(streamed))
        else:
            print(line(streamed), flush=True)
    return 0


def json_line(streamed: Streamed) -> dict[str, Any]:
    """The object ``watch --json`` prints for one item (one a line)."""
    return {"offset": streamed.offset, **streamed.item.model_dump(mode="json")}


def line(streamed: Streamed) -> str:
    """``  7 12:00:01.250 ✓ b completed`` (tokens: ``  9 12:00:01.300   c │ Hello``)."""
    item = streamed.item
    when = item.at.astimezone().strftime("%H:%M:%S.%f")[:-3]
    return f"{streamed.offset:>4} {when} {describe(item)}"


def describe(item: StreamItem) -> str:
    data, agent = item.data, item.agent or ""
    if item.kind == "tokens":
        rewind = f"(replaces {data['replaces']} chars) " if data.get("replaces") else ""
        return f"  {agent} │ {rewind}" + (item.text or "").replace("\n", f"\n  {agent} │ ")
    mark = MARKS.get(item.kind, "·")
    event = f" [event {item.event_id[:8]}]" if item.event_id else ""
    if item.kind == "flow_started":
        total = f", {data['total']} agents" if data.get("total") is not None else ""
        return f"{mark} flow {data.get('flow')} ({data.get('mode')}){total}{event}"
    if item.kind == "flow_finished":
        error = f": {data['error']}" if data.get("error") else ""
        return (f"{mark} flow {data.get('status')}{error} ({data.get('completed', 0)} done, "
                f"{data.get('failed', 0)} failed){event}")  # fmt: skip
    text = f"{mark} {agent} {item.kind}".rstrip()
    if item.kind == "started" and "step" in data:
        text += f" (step {data['step']})"
    elif item.kind == "retrying":
        text += f" (attempt {item.attempt})"
    elif item.kind == "handoff":
        text = f"{mark} {agent} hands off to {data.get('to')}"
    elif item.kind == "published":
        subscribers = ", ".join(data.get("subscribers") or []) or "no subscribers here"
        text = f"{mark} {agent} published {data.get('topic')} → {subscribers}"
    rest = {k: v for k, v in data.items() if k not in ("step", "to", "topic", "subscribers")}
    if rest:
        text += ": " + ", ".join(f"{k}={v}" for k, v in rest.items())
    return text


async def follow_run(
    client: Client, workflow_id: str, waiting: asyncio.Future[Any], out: TextIO = sys.stdout
) -> None:
    """``agentflow run`` on a terminal: print the run's stream until its result is in."""

    async def show() -> None:
        async for streamed in stream(client, workflow_id):
            out.write(line(streamed) + "\n")
            out.flush()

    printer = asyncio.ensure_future(show())
    await asyncio.wait([waiting, printer], return_when=asyncio.FIRST_COMPLETED)
    if not printer.done():  # the result is in: the stream's last items follow at once
        await asyncio.wait([printer], timeout=DRAIN_SECONDS)
    printer.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await printer  # a stream that failed leaves the result to speak for the run
