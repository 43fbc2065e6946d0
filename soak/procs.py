"""The processes the soak starts and kills: the dev server on its SQLite file, and the worker
processes (``python worker.py --config ... --config ...``), each with its own log and ledger."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from agentflow.worker.devserver_process import DevServer
from soak.agents import LEDGER_ENV

REPO = Path(__file__).resolve().parent.parent
READY_LINE = "worker on task queue"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``temporal server start-dev --db-filename FILE`` on a fixed port, killable and
    restartable on the same file."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.db, self.log = folder / "temporal.db", folder / "server.log"
        self.dev = self._new()

    def _new(self) -> DevServer:
        return DevServer(self.port, db=self.db, headless=True, log=self.log,
                         die_with_parent=True)  # fmt: skip

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.dev.start(timeout=120)

    def kill(self) -> None:
        """SIGKILL to the server's process group: nothing flushed, nothing said."""
        process = self.dev.process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self) -> None:
        self.dev = self._new()
        deadline = time.monotonic() + 30
        while True:  # the killed server's port may take a moment to be free
            try:
                self.dev.start(timeout=120)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        self.dev.stop()


@dataclass
class Worker:
    """One worker process serving every config of the soak, at ``address`` (the server or
    the proxy in front of it)."""

    name: str
    configs: list[Path]
    address: str
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)  # every pid it has had, in order
    rss_start: int = 0
    rss_end: int = 0

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self, timeout: float = 120.0) -> None:
        env = {**os.environ, "TEMPORAL_ADDRESS": self.address, "PYTHONUNBUFFERED": "1",
               LEDGER_ENV: str(self.folder / "ledger")}  # fmt: skip
        command = [sys.executable, str(REPO / "worker.py")]
        for config in self.configs:
            command += ["--config", str(config)]
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
        self.pids.append(self.process.pid)
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log.read_text(errors="replace")[offset:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                tail = self.log.read_text(errors="replace")[offset:][-2000:]
                raise RuntimeError(f"worker {self.name} did not start:\n{tail}")
            time.sleep(0.2)
        if not self.rss_start:
            self.rss_start = self.rss()

    def start_patiently(self, tries: int = 3) -> None:
        """``start``, again after a failure (a worker that cannot start now, e.g. while the
        tree it imports is being edited, may start 20 s later)."""
        for attempt in range(tries):
            try:
                self.start()
                return
            except RuntimeError:
                if attempt == tries - 1:
                    raise
                time.sleep(20)

    def rss(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return 0
        try:
            return int(psutil.Process(self.process.pid).memory_info().rss)
        except psutil.Error:
            return 0

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.rss_end = self.rss()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
