"""The AgenticGoKit examples run as a user runs them (``python examples/agenticgokit/...``):
no Temporal server configured, so each runner starts the embedded dev server (its data in the
working directory's ``.agentflow/``) and stops it when it is done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

EXAMPLES = REPO / "examples" / "agenticgokit"


def _run(example: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # As on a fresh machine: no Temporal address or profile from the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env["TEMPORAL_CONFIG_FILE"] = str(cwd / "no-temporal.toml")
    return subprocess.run(
        [sys.executable, str(EXAMPLES / example / "main.py")], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_the_runner_example_chains_retries_and_keeps_one_session(tmp_path: Path) -> None:
    proc = _run("runner", tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "processor: completed, processed = True" in lines
    assert any(line.startswith("validator failed for good: agent 'validator'") for line in lines)
    # processor, the analyzer it chained to, validator and its retry, 3 by priority, the last.
    assert lines[-1] == "session demo-session: emitted 8, completed 7, dead-lettered 1"
    started = [line for line in proc.stderr.splitlines() if "embedded Temporal dev server" in line]
    assert started and ".agentflow/temporal.db" in started[0], proc.stderr
    assert (tmp_path / ".agentflow" / "temporal.db").exists()


@pytest.mark.parametrize("mode", ["collaborative", "sequential"])
def test_the_orchestration_example_runs_the_mode_its_file_names(tmp_path: Path, mode: str) -> None:
    (tmp_path / "example").mkdir()
    flow = (EXAMPLES / "orchestration" / "agentflow.toml").read_text()
    (tmp_path / "example" / "agentflow.toml").write_text(
        flow.replace('mode = "collaborative"', f'mode = "{mode}"', 1)
    )
    (tmp_path / "example" / "main.py").write_text(
        (EXAMPLES / "orchestration" / "main.py").read_text()
    )
    proc = subprocess.run(
        [sys.executable, "example/main.py"], cwd=tmp_path, capture_output=True, text=True,
        timeout=180, env={k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ran = {
        "collaborative": "analyzer, processor, validator",
        "sequential": "collector, publisher, transformer",
    }[mode]
    assert proc.stdout.splitlines()[-1] == f"mode {mode}: completed; agents that ran: {ran}"
