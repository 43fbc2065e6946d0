"""A real worker in a child process (``python worker.py``), for tests that kill it.

Killing an in-process worker cannot show what a crash does: the process survives and the SDK
shuts down cleanly. A child process killed with SIGKILL loses everything it held in memory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
READY_LINE = "worker on task queue"


class WorkerProcess:
    """``python worker.py --config CONFIG --task-queue QUEUE`` against ``address``."""

    def __init__(
        self, config: Path, task_queue: str, address: str, log: Path, cwd: Path = REPO
    ) -> None:
        self.config, self.task_queue, self.address, self.log = config, task_queue, address, log
        self.cwd = cwd  # where handlers that write relative paths write
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        """Start the worker and wait until it logs that it polls the task queue."""
        env = {**os.environ, "TEMPORAL_ADDRESS": self.address, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, str(REPO / "worker.py"), "--config", str(self.config),
                   "--task-queue", self.task_queue]  # fmt: skip
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, cwd=self.cwd, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log.read_text(errors="replace")[offset:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"worker did not start:\n{self.log.read_text()[offset:]}")
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no chance to report anything to the server."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: the worker lets running activities finish, then exits."""
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def wait_for_line(path: Path, line: str, timeout: float = 30.0) -> None:
    """Wait until ``path`` contains ``line`` as a whole line (written by another process)."""
    await _wait_for(path, lambda lines: line in lines, f"never contained {line!r}", timeout)


async def wait_for_lines(path: Path, count: int, timeout: float = 30.0) -> None:
    """Wait until ``path`` has at least ``count`` lines (written by another process)."""
    await _wait_for(
        path, lambda lines: len(lines) >= count, f"never reached {count} lines", timeout
    )


async def _wait_for(
    path: Path, done: Callable[[list[str]], bool], failure: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and done(path.read_text().splitlines())):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} {failure}")
        await asyncio.sleep(0.05)
