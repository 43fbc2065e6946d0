"""``agentflow patterns``: the event patterns (``[patterns.NAME]``) of the registered flows, or
of ``--config``'s flow, each with its open windows (the library is agentflow/client/patterns.py)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from temporalio.client import Client

from agentflow.cli._common import EXIT_OK, connected, connection_flag, flow_settings, print_json
from agentflow.client.bus import registrations
from agentflow.client.patterns import open_windows
from agentflow.config.patterns import PatternConfig
from agentflow.models.pattern import PatternView


def add_commands(commands: Any) -> None:
    cmd = commands.add_parser(
        "patterns", help="event patterns over time windows ([patterns.NAME]) and their open windows"
    )
    connection_flag(cmd)
    cmd.add_argument("--json", action="store_true", help="one JSON object per pattern")
    cmd.set_defaults(func=lambda args: connected(args, _patterns))


async def _patterns(client: Client, args: argparse.Namespace) -> int:
    settings = flow_settings(args.config) if args.config else None
    flow = settings.name if settings is not None else None
    known: dict[tuple[str, str], PatternConfig | None] = {}
    if settings is not None:
        known.update({(settings.name, name): p for name, p in settings.patterns.items()})
    else:
        for name, entry in (await registrations(client)).items():
            known.update({(name, pattern): p for pattern, p in entry.config.patterns.items()})
    views = await open_windows(client, flow)
    for view in views:  # a flow forgotten since: its windows still count
        known.setdefault((view.flow, view.name), None)
    if not known and not args.json:
        print("no patterns: none in this flow file, nor registered on the bus")
    now = datetime.now(timezone.utc)
    for (flow_name, name), pattern in sorted(known.items()):
        mine = [view for view in views if (view.flow, view.name) == (flow_name, name)]
        body = pattern_row(flow_name, name, pattern, mine, now)
        if args.json:
            print_json(body)
            continue
        what = "(not registered)"
        if pattern is not None:
            count = f" x{pattern.count}" if pattern.count else ""
            what = (f"{pattern.kind} {' → '.join(pattern.watched)}{count} within "
                    f"{pattern.within:g}s, key {pattern.key} → {pattern.publish}")  # fmt: skip
        print(f"{flow_name}.{name}  {what}  ({len(body['open'])} open)")
        for window in body["open"]:
            print(
                f"  key {window['key']}: closes in {window['closes_in_seconds']:.1f}s; "
                f"events {', '.join(window['events'])}"
            )
    return EXIT_OK


def pattern_row(
    flow: str, name: str, pattern: PatternConfig | None, views: list[PatternView], now: datetime
) -> dict[str, Any]:
    """One pattern and its open windows, as ``--json`` prints it."""
    described = {} if pattern is None else {
        "kind": pattern.kind, "topics": pattern.watched, "count": pattern.count,
        "within_seconds": pattern.within, "key": pattern.key, "publish": pattern.publish,
    }  # fmt: skip
    return {
        "flow": flow, "pattern": name, **described,
        "open": [
            {"key": view.key, "events": window.ids, "closes": window.deadline.isoformat(),
             "closes_in_seconds": max(0.0, (window.deadline - now).total_seconds())}
            for view in views for window in view.windows
        ],
        "matches": sum(view.matches for view in views),
    }  # fmt: skip
