"""``agentflow replay``: would the workflow code as it is now break runs already in Temporal?
The replaying is ``agentflow.inspect.replay``; this is the command around it."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from temporalio.client import Client

from agentflow.cli._common import connected, connection_flag, print_json
from agentflow.errors import ConfigError
from agentflow.inspect.replay import (
    DEFAULT_WINDOW,
    PROGRESS_EVERY,
    ReplayReport,
    parse_duration,
    replay_runs,
)


def add_command(commands: Any) -> None:
    """Register ``replay`` on cli.py's subparsers."""
    cmd = commands.add_parser(
        "replay", help="replay open and recent runs against this code; exit 1 if any would break"
    )
    cmd.add_argument("--open", action="store_true", help="only running workflows")
    cmd.add_argument(
        "--since", metavar="DURATION", help="running runs plus those closed within this "
        f"window: 90s, 30m, 2h, 7d (default: {DEFAULT_WINDOW // timedelta(hours=1)}h)",
    )  # fmt: skip
    cmd.add_argument("--flow", metavar="NAME", help="only runs of this flow ([agent_flow] name)")
    cmd.add_argument("--limit", type=int, metavar="N", help="at most this many runs (newest first)")
    cmd.add_argument("--json", action="store_true", help="print exactly one JSON object")
    connection_flag(cmd)
    cmd.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> int:
    # Flags are checked before connecting: bad input is exit 2 even with no server around.
    if args.open and args.since:
        raise ConfigError("replay: --open and --since exclude each other (--open: running only)")
    since = DEFAULT_WINDOW if args.since is None else parse_duration(args.since)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit: must be at least 1, got {args.limit}")

    async def run(client: Client, _: argparse.Namespace) -> int:
        show = _progress_printer() if sys.stderr.isatty() and not args.json else None
        with _replay_logs_off():
            report = await replay_runs(
                client, open_only=args.open, since=since, limit=args.limit, flow=args.flow,
                progress=show,
            )  # fmt: skip
        if show is not None:
            sys.stderr.write("\r\x1b[2K")
        _print_report(report, args.json)
        return 1 if report.failed else 0

    return connected(args, run)


def _progress_printer() -> Callable[[ReplayReport], None]:
    def show(report: ReplayReport) -> None:
        if report.replayed % PROGRESS_EVERY == 0:
            sys.stderr.write(
                f"\r\x1b[2Kreplaying: {report.replayed} runs, {len(report.failed)} would break"
            )
            sys.stderr.flush()

    return show


@contextlib.contextmanager
def _replay_logs_off() -> Iterator[None]:
    """Quiet the SDK while replaying: the report says what matters, one line per run.

    The worker logs each failed workflow task with a traceback, and workflow code logs what
    it does in the last, not-yet-recorded task of a history as if it were running.
    """
    loggers = [logging.getLogger(name) for name in ("temporalio.worker", "temporalio.workflow")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _print_report(report: ReplayReport, as_json: bool) -> None:
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    for failure in report.failed:
        print(f"✗ {failure.workflow_id} (run {failure.run_id}, {failure.workflow_type}): "
              f"{failure.error}")  # fmt: skip
    print(report.summary())
