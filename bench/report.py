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

from agentflow.devserver import temporal_binary

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SYSTEMS = ("asyncio", "raw", "raw-local", "agentflow", "agentflow-local")
# (numerator, denominator, column title)
RATIOS = (
    ("agentflow", "raw", "agentflow ÷ raw"),
    ("agentflow-local", "raw-local", "local ÷ raw-local"),
    ("agentflow-local", "agentflow", "local ÷ agentflow"),
)


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

    def table(self) -> str:
        header = ["workload", "metric", *SYSTEMS, *(title for _, _, title in RATIOS)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            ratios = [row.ratio(top, bottom) for top, bottom, _ in RATIOS]
            cells = [row.workload, row.metric, *(row.cell(s) for s in SYSTEMS), *ratios]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


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
    ]


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
    generated = "\n".join([BEGIN, "", *(f"- {line}" for line in header), "",
                           report.table(), "", *report.notes, "", END])  # fmt: skip
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    path.write_text(before + generated + after)
