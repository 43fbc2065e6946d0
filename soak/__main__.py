"""``python -m soak [--sessions N] [--events N] [--turns N] [--minutes M] [--bad N]
[--with-hostile] [--out DIR]``: run
the soak, print its table, write report.md and report.json into DIR; exit 1 if a check fails."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from soak.faults import FaultPlan
from soak.report import markdown, passed
from soak.run import Size, soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=1_000)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--cut-seconds", type=float, default=30.0)
    parser.add_argument("--bad", type=int, default=None,
                        help="bad inputs sent during the load (default: events / 100, at "
                        "least 14; 0: none)")  # fmt: skip
    parser.add_argument("--with-hostile", action="store_true",
                        help="run tests/test_hostile_input.py and tests/test_hostile_runs.py "
                        "under the load and report them")  # fmt: skip
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for logs and the report (default .agentflow/soak/TIME)",
    )
    args = parser.parse_args(argv)
    folder = args.out or Path(".agentflow") / "soak" / time.strftime("%Y%m%d-%H%M%S")
    folder = folder.resolve()
    size = Size(args.sessions, args.events, args.turns, args.minutes, bad=args.bad,
                plan=FaultPlan(cut_seconds=args.cut_seconds),
                hostile=args.with_hostile)  # fmt: skip
    print(f"soak: logs and report in {folder}", flush=True)
    data = asyncio.run(soak(size, folder))
    text = markdown(data)
    (folder / "report.md").write_text(text)
    (folder / "report.json").write_text(json.dumps(data, indent=2, default=str))
    print(text, flush=True)
    return 0 if passed(data) else 1


if __name__ == "__main__":
    sys.exit(main())
