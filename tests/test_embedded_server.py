"""The Temporal server of a one-process runner (agentflow/worker/devserver.py): the configured
one, else the one answering on the default port, else an embedded dev server on a SQLite file
that keeps its runs across a SIGKILL of its owner and a restart, and never outlives its owner.

Free ports only (never 7233, which a developer's own server may hold); no worker needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from agentflow.client.visibility import require_search_attributes
from agentflow.config import FlowConfig
from agentflow.errors import ConfigError
from agentflow.worker.devserver import (
    PID_FILE,
    address_configured,
    answers,
    embedded_server,
    server_for,
    stop_leftover,
)
from agentflow.worker.devserver_process import DevServerError
from tests.conftest import REPO, flow_config

# Starts the embedded server, starts a workflow no worker serves, says so, and waits to be
# killed: what it started must survive the kill, and its server must not.
OWNER = """
import asyncio, sys
from pathlib import Path
from temporalio.client import Client
from agentflow.worker.devserver import embedded_server

async def main(directory: str, port: str) -> None:
    async with embedded_server(Path(directory), int(port), ui=False) as address:
        client = await Client.connect(address)
        await client.start_workflow("NoWorkerServesIt", id="before-the-kill", task_queue="none")
        print("started", flush=True)
        await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


def config(**tables: object) -> FlowConfig:
    return flow_config(agents={"a": "tests.agents:noop"}, tables=tables, sequential_agents=["a"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its parent counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.02)


@pytest.fixture
def nothing_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FlowConfig:
    """No TEMPORAL_ADDRESS, no profile (a config file that does not exist), no [temporal]."""
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "no-temporal.toml"))
    return config()


@contextlib.asynccontextmanager
async def web_server() -> AsyncIterator[int]:
    """A port held by something that is not a Temporal server: a plain HTTP/1.1 server."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def test_address_configured_names_its_source(
    nothing_configured: FlowConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert address_configured(nothing_configured) is None
    in_file = config(temporal={"address": "example.com:7233"})
    assert address_configured(in_file) == "[temporal] address in agentflow.toml"

    profiles = tmp_path / "temporal.toml"
    profiles.write_text('[profile.default]\naddress = "default.example:7233"\n'
                        '[profile.x]\naddress = "x.example:7233"\n'
                        '[profile.bare]\nnamespace = "n"\n')  # fmt: skip
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(profiles))
    assert address_configured(nothing_configured) == "profile 'default'"
    monkeypatch.setenv("TEMPORAL_PROFILE", "x")
    assert address_configured(nothing_configured) == "profile 'x'"
    named = config(temporal={"profile": "bare"})
    assert address_configured(named) is None  # a profile without an address sets none
    missing = config(temporal={"profile": "no"})
    with pytest.raises(ConfigError, match="Profile 'no' not found"):
        address_configured(missing)

    monkeypatch.setenv("TEMPORAL_ADDRESS", "env.example:7233")  # above any profile
    assert address_configured(nothing_configured) == "TEMPORAL_ADDRESS"


async def test_a_configured_server_is_used_as_configured(
    nothing_configured: FlowConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.example:7233")
    address, server, line = await server_for(nothing_configured)
    assert (address, server) == (None, None)  # nothing is asked of the network
    assert line == "using the Temporal server at temporal.example:7233 (TEMPORAL_ADDRESS)"


async def test_a_port_held_by_something_else_is_one_clear_error(
    nothing_configured: FlowConfig, tmp_path: Path
) -> None:
    async with web_server() as port:
        assert await answers("127.0.0.1", port, 1.0)
        with pytest.raises(DevServerError) as started:
            async with embedded_server(tmp_path, port, ui=False):
                pytest.fail("entered")
        assert str(started.value) == (
            f"cannot start an embedded Temporal dev server on 127.0.0.1:{port}: something "
            "that is not a Temporal server listens there; stop it, or set TEMPORAL_ADDRESS or "
            "[temporal] address to the Temporal server to use"
        )
        with pytest.raises(
            DevServerError, match=f"not a Temporal server listens on localhost:{port}"
        ):
            await server_for(nothing_configured, tmp_path, port)
    assert not (tmp_path / "temporal.db").exists()
    assert not await answers("127.0.0.1", port, 1.0)


async def test_a_leftover_server_of_a_dead_owner_is_stopped(tmp_path: Path) -> None:
    """Whatever outlived its owner (no PR_SET_PDEATHSIG off Linux) is stopped; a server whose
    owner runs, or a pid that is not a dev server on that file, is left alone."""
    db = str(tmp_path / "temporal.db")
    dead = subprocess.Popen(["true"])
    dead.wait()
    sleeper = [sys.executable, "-c", "import sys; sys.stdin.read()"]
    record = tmp_path / PID_FILE
    with subprocess.Popen([*sleeper, "server", "start-dev", db], stdin=subprocess.PIPE) as fake:
        record.write_text(json.dumps({"server": fake.pid, "owner": os.getpid(), "db": db}))
        await stop_leftover(tmp_path)
        assert fake.poll() is None and record.exists()  # its owner (we) still runs
        record.write_text(json.dumps({"server": fake.pid, "owner": dead.pid, "db": "other.db"}))
        await stop_leftover(tmp_path)
        assert fake.poll() is None and not record.exists()  # not a server on that file
        record.write_text(json.dumps({"server": fake.pid, "owner": dead.pid, "db": db}))
        await stop_leftover(tmp_path)
        assert fake.wait(timeout=30) == -signal.SIGTERM
        assert not record.exists()


async def test_embedded_server_survives_its_owners_sigkill_and_restarts_on_its_data(
    nothing_configured: FlowConfig, tmp_path: Path
) -> None:
    port = free_port()
    command = [sys.executable, "-c", OWNER, str(tmp_path), str(port)]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as owner:
        try:
            assert owner.stdout is not None
            assert owner.stdout.readline() == "started\n"
            killed_server = json.loads((tmp_path / PID_FILE).read_text())["server"]
        finally:
            owner.kill()
    # Linux stops the server of a process killed with SIGKILL (PR_SET_PDEATHSIG).
    try:
        wait_until(lambda: gone(killed_server), "the killed owner's server stopped")
    except AssertionError:
        os.kill(killed_server, signal.SIGKILL)  # the failure this looks for: not left running
        raise

    team = config(temporal={"namespace": "team"})  # no address: created on the embedded server
    address, server, line = await server_for(team, tmp_path, port)
    assert address is None and server is not None
    assert line == (
        f"started an embedded Temporal dev server at 127.0.0.1:{port}, data in "
        f"{tmp_path / 'temporal.db'} (no address configured and none answers on localhost:{port})"
    )
    with pytest.raises(RuntimeError, match="the body failed"):
        async with server as address:
            assert address == f"127.0.0.1:{port}"
            client = await Client.connect(address)
            for namespace in ("default", "team"):  # agentflow's attributes, registered at start
                await require_search_attributes(await Client.connect(address, namespace=namespace))
            described = await client.get_workflow_handle("before-the-kill").describe()
            assert described.status == WorkflowExecutionStatus.RUNNING  # kept across the kill
            running = json.loads((tmp_path / PID_FILE).read_text())["server"]

            # A second embedded server on the same port: refused; server_for uses this one.
            with pytest.raises(DevServerError, match="another Temporal server listens there"):
                async with embedded_server(tmp_path / "other", port, ui=False):
                    pytest.fail("entered")
            assert await server_for(nothing_configured, tmp_path / "other", port) == (
                f"localhost:{port}", None,
                f"using the Temporal server at localhost:{port} (no address configured)",
            )  # fmt: skip
            raise RuntimeError("the body failed")
    assert gone(running)  # stopped on the way out, though the body raised
    assert not (tmp_path / PID_FILE).exists()
    assert not await answers("127.0.0.1", port, 1.0)
