"""Median/min/max of repeated measurements, the table, and bench/RESULTS.md."""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from agentflow.worker.devserver_process import temporal_binary

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SYSTEMS = ("asyncio", "raw", "raw-local", "agentflow", "agentflow-local")
# (numerator, denominator, column title)
RATIOS = (
    ("agentflow", "raw", "agentflow ÷ raw"),
    ("agentflow-local", "raw-local", "local ÷ raw-local"),
    ("agentflow-local", "agentflow", "local ÷ agentflow"),
)


@dataclass(frozen=True)
class Target:
    """A ratio of two medians of one run (workload, metric) on the same system, and its bound."""

    title: str
    top: tuple[str, str]
    bottom: tuple[str, str]
    bound: float
    at_most: bool  # the ratio must be ≤ bound (else ≥ bound)


# W6's targets are about local agents; raw-local shows what hand-written Temporal reaches.
TARGETS = (
    Target("(a) event into a live session, `emit(wait=True)` (update-with-start), median "
           "÷ W1 run median", ("W6 session latency", "wait_median_ms"),
           ("W1 latency, noop", "run_median_ms"), 0.3, at_most=True),
    Target("(a) the same with `emit()` then `result()` (signal-with-start, then an update)",
           ("W6 session latency", "signal_median_ms"), ("W1 latency, noop", "run_median_ms"),
           0.3, at_most=True),
    Target("(b) session steps/s (W6) ÷ W2 steps/s (no-op)",
           ("W6 session throughput", "steps_per_s"), ("W2 throughput, noop", "steps_per_s"),
           2.0, at_most=False),
)  # fmt: skip
TARGET_SYSTEMS = ("agentflow-local", "raw-local", "agentflow")


@dataclass
class Row:
    """One metric of one workload: the samples of every system."""

    workload: str
    metric: str
    samples: dict[str, list[float]] = field(default_factory=dict)

    def cell(self, system: str) -> str:
        values = self.samples.get(system)
        if not values:
            return "-"
        median = statistics.median(values)
        if len(values) == 1:
            return _fmt(median)
        return f"{_fmt(median)} [{_fmt(min(values))} to {_fmt(max(values))}]"

    def ratio(self, top: str, bottom: str) -> str:
        if not self.samples.get(top) or not self.samples.get(bottom):
            return "-"
        below = statistics.median(self.samples[bottom])
        return f"{statistics.median(self.samples[top]) / below:.2f}" if below else "-"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, workload: str, system: str, metrics: dict[str, float]) -> None:
        for metric, value in metrics.items():
            row = next((r for r in self.rows if (r.workload, r.metric) == (workload, metric)), None)
            if row is None:
                row = Row(workload, metric)
                self.rows.append(row)
            row.samples.setdefault(system, []).append(value)

    def median(self, workload: str, metric: str, system: str) -> float | None:
        row = next((r for r in self.rows if (r.workload, r.metric) == (workload, metric)), None)
        values = row.samples.get(system) if row else None
        return statistics.median(values) if values else None

    def target_ratio(self, target: Target, system: str) -> tuple[float, float, float] | None:
        """(ratio, numerator, denominator) of ``target`` on ``system``, if both were measured."""
        top, bottom = self.median(*target.top, system), self.median(*target.bottom, system)
        if top is None or not bottom:
            return None
        return top / bottom, top, bottom

    def targets_table(self) -> str:
        """The targets, met or not on agentflow-local; empty if W6 did not run."""
        if not any(self.target_ratio(t, s) for t in TARGETS for s in TARGET_SYSTEMS):
            return ""
        header = ["target", "bound", *TARGET_SYSTEMS, "met (agentflow-local)?"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for target in TARGETS:
            cells = []
            for system in TARGET_SYSTEMS:
                found = self.target_ratio(target, system)
                cells.append(f"{found[0]:.2f} ({_fmt(found[1])} ÷ {_fmt(found[2])})"
                             if found else "-")  # fmt: skip
            local = self.target_ratio(target, TARGET_SYSTEMS[0])
            met = "-" if local is None else "yes" if _meets(target, local[0]) else "no"
            bound = f"{'≤' if target.at_most else '≥'} {target.bound:g}"
            lines.append("| " + " | ".join([target.title, bound, *cells, met]) + " |")
        return "\n".join(lines)

    def runner_table(self) -> str:
        """The one-process runner (agents registered in code) against the CLI worker's path,
        per row it ran in; empty if it ran in none."""
        rows = [row for row in self.rows if row.cell("runner") != "-"]
        if not rows:
            return ""
        pairs = (("runner", "agentflow"), ("runner-local", "agentflow-local"))
        header = ["workload", "metric"]
        for top, bottom in pairs:
            header += [bottom, top, f"{top} ÷ {bottom}"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            cells = [row.workload, row.metric]
            for top, bottom in pairs:
                cells += [row.cell(bottom), row.cell(top), row.ratio(top, bottom)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def table(self) -> str:
        header = ["workload", "metric", *SYSTEMS, *(title for _, _, title in RATIOS)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            ratios = [row.ratio(top, bottom) for top, bottom, _ in RATIOS]
            cells = [row.workload, row.metric, *(row.cell(s) for s in SYSTEMS), *ratios]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _meets(target: Target, ratio: float) -> bool:
    return ratio <= target.bound if target.at_most else ratio >= target.bound


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if value >= 1 else f"{value:.3f}"


def machine() -> list[str]:
    """What the figures were measured on, and how busy the machine was."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    mem = re.search(r"MemTotal:\s+(\d+)", _read("/proc/meminfo"))
    cli = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True)
    return [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"cpu: {os.cpu_count()} x {cpu}",
        f"memory: {int(mem.group(1)) // 1024 if mem else '?'} MiB",
        f"python: {platform.python_version()} ({platform.platform()})",
        f"temporalio: {version('temporalio')}; {cli.stdout.strip()}",
        f"code: {_code_version()}",
    ]


def _code_version() -> str:
    """The commit measured, and which measured files (not bench/) differed from it."""
    git = ["git", "-C", str(Path(__file__).resolve().parent.parent)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True)  # fmt: skip
        changed = subprocess.run([*git, "status", "--porcelain", "--", "agentflow", "workflows",
                                  "activities"], capture_output=True, text=True)  # fmt: skip
    except OSError:  # no git on this machine
        return "unknown"
    files = [line[3:] for line in changed.stdout.splitlines()]
    commit = head.stdout.strip() or "unknown"
    return f"{commit}, uncommitted changes in {', '.join(files)}" if files else commit


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min)"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def write_results(report: Report, header: list[str], path: Path = RESULTS) -> None:
    """Replace the generated part of RESULTS.md, keeping the hand-written analysis around it."""
    targets, runner = report.targets_table(), report.runner_table()
    generated = "\n".join([BEGIN, "", *(f"- {line}" for line in header), "", report.table(),
                           "", *([runner, ""] if runner else []),
                           *([targets, ""] if targets else []), *report.notes, "",
                           END])  # fmt: skip
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    path.write_text(before + generated + after)
