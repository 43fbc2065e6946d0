"""The CLI's inspection commands: ``trace``, ``status``, ``list``, ``graph``; live progress.

Kept apart from cli.py so that file stays a small dispatcher. Everything here reads what
Temporal already recorded: history (trace, graph of a run or a session), queries (progress),
visibility.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from temporalio.client import Client, WorkflowHandle

from agentflow import names
from agentflow.cli._common import (
    NotFoundError,
    connected,
    connection_flag,
    find_run,
    print_json,
    require_session_runs,
)
from agentflow.client import visibility
from agentflow.config import DEFAULT_CONFIG_FILE, load_config
from agentflow.errors import AgentflowError, ConfigError
from agentflow.inspect.graph.flow import SESSION_EVENTS, config_graph, trace_graph
from agentflow.inspect.status import progress_of, run_status
from agentflow.inspect.trace import TraceEntry
from agentflow.inspect.trace.bus_path import event_graph, trace_event
from agentflow.inspect.trace.read import (
    filter_entries,
    format_table,
    trace_chain,
    trace_session,
)
from agentflow.models.flow import FlowProgress

REFRESH_SECONDS = 0.5


def add_commands(commands: Any) -> None:
    """Register the subcommands on cli.py's subparsers."""
    cmd = commands.add_parser("trace", help="one line per step of a run, from Temporal history")
    cmd.add_argument("run", nargs="?", help="workflow id or run id")
    cmd.add_argument("--run-id", help="a specific run of the workflow (default: whole chain)")
    cmd.add_argument("--session", help="trace this session instead: its events, in order")
    cmd.add_argument("--agent", help="only this agent's lines")
    cmd.add_argument("--event", help="only this flow event's lines (its id, or a prefix); "
                     "alone: a bus event through every delivery and chain")  # fmt: skip
    cmd.add_argument("--flow-only", action="store_true", help="only outcomes and hand-offs")
    cmd.add_argument("--json", action="store_true", help="one JSON object per entry and line")
    connection_flag(cmd)
    cmd.set_defaults(func=lambda args: connected(args, _trace))

    cmd = commands.add_parser("status", help="state and live progress of a run")
    cmd.add_argument("run", help="workflow id or run id")
    cmd.add_argument("--json", action="store_true", help="print one JSON object and return")
    connection_flag(cmd)
    cmd.set_defaults(func=lambda args: connected(args, _status))

    cmd = commands.add_parser("list", help="list runs through Temporal visibility")
    cmd.add_argument("--session")
    cmd.add_argument("--flow")
    cmd.add_argument("--status", help=", ".join(visibility.STATUSES))
    cmd.add_argument("--limit", type=int, default=50)
    cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    connection_flag(cmd)
    cmd.set_defaults(func=lambda args: connected(args, _list))

    cmd = commands.add_parser(
        "graph", help="Mermaid diagram of the flow, of a run's path, or of a session's events"
    )
    cmd.add_argument("run", nargs="?", help="draw the path this run took (workflow/run id)")
    cmd.add_argument("--output", help="write here (a .md file gets a ```mermaid fence)")
    cmd.add_argument("--last", type=int, default=SESSION_EVENTS, metavar="N",
                     help=f"a session: its last N events (default {SESSION_EVENTS})")  # fmt: skip
    connection_flag(cmd)
    cmd.set_defaults(func=_graph)


async def _trace(client: Client, args: argparse.Namespace) -> int:
    if not args.run and not args.session and args.event:
        try:
            entries = await trace_event(client, args.event)
        except AgentflowError:  # raised only when no shard holds it
            hint = "an event emitted into a session: --session S --event ID"
            raise NotFoundError("bus event", args.event, client.namespace, hint=hint) from None
        _print_trace(entries, args.json)
        if not args.json:
            print("\n```mermaid\n" + event_graph(entries) + "\n```")
        return 0
    if not args.run and not args.session:
        raise ConfigError("trace: give a workflow/run id, --session ID, or --event ID")
    if args.session:
        entries = await trace_session(client, args.session)
        if not entries:
            await require_session_runs(client, args.session)
    else:
        workflow_id, run_id = await find_run(client, args.run)
        entries = await trace_chain(client, workflow_id, args.run_id or run_id)
    _print_trace(filter_entries(entries, agent=args.agent, flow_only=args.flow_only,
                                event=args.event), args.json)  # fmt: skip
    return 0


def _print_trace(entries: list[TraceEntry], as_json: bool) -> None:
    if not as_json:
        print(format_table(entries))
    for entry in entries if as_json else []:  # JSON Lines: one entry a line
        print_json(entry.model_dump(mode="json"))


async def _status(client: Client, args: argparse.Namespace) -> int:
    workflow_id, _ = await find_run(client, args.run)
    status = await run_status(client, workflow_id)  # the latest run of a continue-as-new chain
    progress = status.progress
    if args.json:
        shown = progress.model_dump(mode="json") if progress else None
        print_json({"workflow_id": workflow_id, "run_id": status.run_id,
                    "status": status.status, "progress": shown})  # fmt: skip
    else:
        print(f"{workflow_id} (run {status.run_id}): {status.status}")
        start = status.start_time.timestamp()
        if status.running and sys.stdout.isatty():
            handle = client.get_workflow_handle(workflow_id)
            await follow(handle, asyncio.ensure_future(handle.result()), start)
        elif progress:
            end = status.close_time.timestamp() if status.close_time else time.time()
            print(progress_line(progress, end - start, ended=not status.running))
    return 0 if status.status in ("running", "completed") else 1


async def follow(
    handle: WorkflowHandle[Any, Any],
    waiting: asyncio.Future[Any],
    started: float,
    out: TextIO = sys.stdout,
) -> None:
    """Redraw one progress line until ``waiting`` is done (the terminal's live display)."""
    last: FlowProgress | None = None
    while not waiting.done():
        last = await progress_of(handle) or last
        line = progress_line(last, time.time() - started) if last else "waiting for a worker…"
        out.write("\r\x1b[2K" + line)
        out.flush()
        await asyncio.wait([waiting], timeout=REFRESH_SECONDS)
    last = await progress_of(handle) or last
    if last:
        out.write("\r\x1b[2K" + progress_line(last, time.time() - started))
    out.write("\n")
    out.flush()


def progress_line(progress: FlowProgress, elapsed: float, *, ended: bool = False) -> str:
    """``[####------] 4/10 done · 1 running (b) · 0 failed · 2.3s`` while a run goes on;
    once it ``ended``, what it did: ``1/3 done · 1 failed · 1 not run · 0.4s``."""
    total = progress.total
    done = progress.completed + progress.failed
    of = f"{progress.completed}/{total}" if total is not None else str(progress.completed)
    if ended:
        not_run = total - done if total is not None and total > done else 0
        skipped = f" · {not_run} not run" if not_run else ""
        return f"{of} done · {progress.failed} failed{skipped} · {elapsed:.1f}s"
    bar = ""
    if total:
        filled = min(10, round(10 * done / total))
        bar = f"[{'#' * filled}{'-' * (10 - filled)}] "
    running = ", ".join(progress.running)
    return (
        f"{bar}{of} done · {len(progress.running)} running"
        + (f" ({running})" if running else "")
        + f" · {progress.failed} failed · {elapsed:.1f}s"
    )


async def _list(client: Client, args: argparse.Namespace) -> int:
    runs = visibility.list_runs(client, args.session, args.flow, args.status, args.limit)
    async for run in runs:
        attrs = run.typed_search_attributes
        row = {
            "workflow_id": run.id,
            "run_id": run.run_id,
            "status": visibility.status_name(run.status),
            "flow": attrs.get(names.FLOW),
            "mode": attrs.get(names.MODE),
            "session": attrs.get(names.SESSION),
            "start_time": run.start_time.isoformat(),
        }
        if args.json:
            print_json(row)
        else:
            started = run.start_time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
            session = f"  session {row['session']}" if row["session"] else ""
            print(f"{started}  {row['status']:<16} {row['flow']} ({row['mode']})  "
                  f"{run.id}{session}")  # fmt: skip
    return 0


def _graph(args: argparse.Namespace) -> int:
    if args.run:
        return connected(args, _graph_of_run)
    config = load_config(args.config or DEFAULT_CONFIG_FILE, check_handlers=False)
    _write_chart(config_graph(config), args.output)
    return 0


async def _graph_of_run(client: Client, args: argparse.Namespace) -> int:
    if args.last < 1:
        raise ConfigError(f"--last: must be at least 1, not {args.last}")
    workflow_id, run_id = await find_run(client, args.run)
    entries = await trace_chain(client, workflow_id, run_id)
    _write_chart(trace_graph(entries, args.last), args.output)
    return 0


def _write_chart(chart: str, output: str | None) -> None:
    if output:
        fenced = f"```mermaid\n{chart}```\n" if output.endswith(".md") else chart
        Path(output).write_text(fenced, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(chart)
