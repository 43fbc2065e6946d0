"""Ports of ``agentflow dev`` and ``agentflow demo`` (and ``make demo PORT=``): a port no socket
can take is one line naming the flag and what is allowed, exit 2, before anything starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentflow.cli.main import main
from tests.conftest import REPO

ALLOWED = "a port is a number from 1 to 65535"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["dev", "--port", "99999"], f"--port: 99999 is not a port; {ALLOWED}"),
        (["dev", "--port", "0"], f"--port: 0 is not a port; {ALLOWED}"),
        (["dev", "--port", "-5"], f"--port: -5 is not a port; {ALLOWED}"),
        (["dev", "--ui-port", "70000"], f"--ui-port: 70000 is not a port; {ALLOWED}"),
        (["dev", "--port", "65000"],
         "--port: 65000 puts the UI on port 66000 (--port + 1000), over 65535; choose a --port "
         "up to 64535, or a --ui-port"),
        (["dev", "--port", "7300", "--ui-port", "7300"],
         "--ui-port: 7300 is --port too; choose two different ports"),
        (["demo", "--port", "99999"], f"--port: 99999 is not a port; {ALLOWED}"),
        (["demo", "--port", "64600"],
         "--port: 64600 puts the UI on port 65600 (--port + 1000), over 65535; choose a --port "
         "up to 64535, or a --ui-port"),
        (["demo", "--port", "7300", "--ui-port", "123456"],
         f"--ui-port: 123456 is not a port; {ALLOWED}"),
    ],
)  # fmt: skip
def test_a_port_out_of_range_is_one_line(
    argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(tmp_path / "t.db")] if argv[0] == "dev" else []
    assert main([*argv, *db]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"agentflow: error: {said}\n")
    assert not (tmp_path / "t.db").exists()


def test_the_command_says_so_without_a_traceback(tmp_path: Path) -> None:
    """As a user runs it: the console script, not ``main``."""
    script = Path(sys.executable).parent / "agentflow"
    for command in (["dev", "--port", "65000"], ["demo", "--port", "99999"]):
        proc = subprocess.run(
            [str(script), *command], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2
        assert proc.stdout == ""
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith("agentflow: error: --port: ")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("assignment", "port"), [([], "7233"), (["PORT=7300"], "7300")])
def test_make_demo_passes_its_port(assignment: list[str], port: str) -> None:
    # As a make of its own, even when the suite runs under `make test` (no MAKEFLAGS, no
    # "Entering directory" lines).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    proc = subprocess.run(
        ["make", "--no-print-directory", "--dry-run", "demo", *assignment], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert proc.stdout.splitlines()[-1] == f".venv/bin/agentflow demo --port {port}"
