"""The hostile-input suite under the soak's load (``--with-hostile``): pytest on
tests/test_hostile_input.py and tests/test_hostile_runs.py in a subprocess, started with the
load, its output in ``hostile.log``; the report gives its verdict, its summary line and time."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from soak.procs import REPO

FILES = ("tests/test_hostile_input.py", "tests/test_hostile_runs.py")
TIMEOUT_SECONDS = 1200.0


async def run_suite(folder: Path) -> dict[str, Any]:
    """Run the suite once; its exit code, summary line and seconds."""
    log = folder / "hostile.log"
    began = time.monotonic()
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FILES,
            cwd=REPO, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            code = await asyncio.wait_for(process.wait(), TIMEOUT_SECONDS)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            code = -9
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return {
        "files": list(FILES),
        "exit_code": code,
        "passed": code == 0,
        "summary": lines[-1] if lines else "(no output)",
        "seconds": round(time.monotonic() - began, 1),
        "log": str(log),
    }
