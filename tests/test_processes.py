"""Process lifecycle: ``agentflow dev`` never leaves its server behind, a stopped worker exits
even when a handler is stuck, and run links point at the right Temporal UI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from agentflow.cli.devserver import print_banner, serve
from agentflow.cli.main import main
from agentflow.client.connection import ui_url
from agentflow.client.runner import FlowHandle, Runner
from agentflow.config import load_config
from agentflow.worker.devserver_process import DevServer, port_in_use
from tests._worker_process import WorkerProcess, wait_for_line
from tests.conftest import REPO, cli

BANNER_END = "Press Ctrl-C to stop."


# --- agentflow dev --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_pids(db: Path) -> list[int]:
    """Processes running ``temporal server start-dev`` on the database ``db``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # it exited meanwhile
            continue
        if "start-dev" in args and str(db) in args:
            pids.append(int(entry.name))
    return pids


def wait_until(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.02)


@contextlib.contextmanager
def agentflow_dev(tmp_path: Path, *flags: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``agentflow dev --db TMP/temporal.db FLAGS`` as a child process; yields it and its
    output file. Whatever the test leaves running (the failure it looks for) is killed."""
    db, output = tmp_path / "temporal.db", tmp_path / "dev.out"
    command = [sys.executable, "-m", "agentflow.cli", "dev", "--db", str(db), *flags]
    with output.open("wb") as sink:
        dev = subprocess.Popen(command, stdout=sink, stderr=sink, stdin=subprocess.DEVNULL)
    try:
        yield dev, output
    finally:
        for pid in [dev.pid, *server_pids(db)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        dev.wait()


def wait_for_banner(dev: subprocess.Popen[bytes], output: Path) -> None:
    def ready() -> bool:
        if dev.poll() is not None:
            raise AssertionError(f"agentflow dev exited:\n{output.read_text()}")
        return BANNER_END in output.read_text()

    wait_until(ready, "agentflow dev did not print its banner")


@pytest.mark.parametrize(
    "stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
def test_dev_stops_its_server_on_a_stop_signal(tmp_path: Path, stop: signal.Signals) -> None:
    port, ui_port = free_port(), free_port()
    db = tmp_path / "temporal.db"
    with agentflow_dev(tmp_path, "--port", str(port), "--ui-port", str(ui_port)) as (dev, out):
        wait_for_banner(dev, out)
        [server] = server_pids(db)
        # Its own process group: a terminal's Ctrl-C reaches only agentflow dev, which stops it.
        assert os.getpgid(server) == server != os.getpgid(dev.pid)
        assert port_in_use("127.0.0.1", port) and port_in_use("127.0.0.1", ui_port)
        dev.send_signal(stop)
        code = dev.wait(timeout=60)
        assert code == 0, out.read_text()
        assert server_pids(db) == []
        assert not port_in_use("127.0.0.1", port)
        assert not port_in_use("127.0.0.1", ui_port)
    # A UI port other than Temporal's default (--port + 1000) needs [temporal] ui_url for links.
    assert f'set [temporal] ui_url = "http://localhost:{ui_port}"' in out.read_text()
    assert f"export TEMPORAL_ADDRESS=127.0.0.1:{port}\n" in out.read_text()


def free_port_pair() -> int:
    """A free port whose Temporal UI port (+ 1000) is free too."""
    while True:
        port = free_port()
        if port + 1000 <= 65535 and not port_in_use("127.0.0.1", port + 1000):
            return port


async def test_dev_on_another_port_says_how_to_reach_it(tmp_path: Path) -> None:
    """The banner's export line and UI link are what a user copies: both must work."""
    port = free_port_pair()
    with agentflow_dev(tmp_path, "--port", str(port)) as (dev, out):
        wait_for_banner(dev, out)
        banner = dict(line.split(":", 1) for line in out.read_text().splitlines() if ":" in line)
        assert banner["Temporal UI"].strip() == f"http://localhost:{port + 1000}"
        export = banner["Clients and workers"].strip()
        assert export == f"export TEMPORAL_ADDRESS=127.0.0.1:{port}"
        client = await Client.connect(export.partition("=")[2])
        assert (await client.count_workflows()).count == 0
        with urllib.request.urlopen(banner["Temporal UI"].strip(), timeout=30) as page:
            assert page.status == 200
        # Run links (without [temporal] ui_url) point at that UI too.
        assert ui_url(client, "w").startswith(f"http://127.0.0.1:{port + 1000}/")
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=60) == 0


@pytest.mark.parametrize(
    ("server", "export"),
    [(DevServer(), None), (DevServer(port=7400), "127.0.0.1:7400"),
     (DevServer(ip="0.0.0.0", port=7400), "127.0.0.1:7400"),
     (DevServer(ip="10.1.2.3"), "10.1.2.3:7233")],
)  # fmt: skip
def test_dev_banner_exports_an_address_clients_would_not_find(
    server: DevServer, export: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    print_banner(server)
    lines = [line for line in capsys.readouterr().out.splitlines() if "TEMPORAL_ADDRESS" in line]
    assert lines == (
        [] if export is None else [f"Clients and workers: export TEMPORAL_ADDRESS={export}"]
    )


def test_dev_stops_its_server_when_stopped_while_it_starts(tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    with agentflow_dev(tmp_path, "--port", str(free_port())) as (dev, out):
        wait_until(lambda: server_pids(db), "agentflow dev did not start the server")
        dev.send_signal(signal.SIGTERM)  # most likely before the server listens
        assert dev.wait(timeout=60) == 0, out.read_text()
        assert server_pids(db) == []


def test_dev_reports_a_server_that_exits_on_its_own(tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    with agentflow_dev(tmp_path, "--port", str(free_port())) as (dev, out):
        wait_for_banner(dev, out)
        [server] = server_pids(db)
        os.kill(server, signal.SIGKILL)
        assert dev.wait(timeout=60) == 1
    last_line = out.read_text().strip().splitlines()[-1]
    assert last_line == "agentflow: error: the temporal dev server was killed by SIGKILL"


def test_serve_stops_the_server_when_an_error_interrupts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_terminal(server: DevServer) -> None:
        raise BrokenPipeError("stdout is gone")

    monkeypatch.setattr("agentflow.cli.devserver.print_banner", broken_terminal)
    server = DevServer(port=free_port(), db=tmp_path / "temporal.db", headless=True)
    with pytest.raises(BrokenPipeError):
        serve(server)
    assert server.process is not None and server.process.poll() is not None
    assert server_pids(tmp_path / "temporal.db") == []
    assert not port_in_use("127.0.0.1", server.port)


def test_dev_ui_port_defaults_to_temporals_own() -> None:
    server = DevServer(port=7400)
    assert server.ui_port == 8400
    assert server.command()[server.command().index("--ui-port") + 1] == "8400"
    assert DevServer(port=7400, ui_port=9000).ui_address == "http://localhost:9000"


# --- worker shutdown ------------------------------------------------------------------------

STUCK_FLOW = """
[agent_flow]
name = "stuck"

[orchestration]
mode = "sequential"
sequential_agents = ["stuck"]
timeout_seconds = 300

[orchestration.retry]
initial_interval_seconds = 0.1

[agents.stuck]
handler = "tests.process_agents:{handler}"
timeout_seconds = 120   # longer than the test: only the worker's shutdown ends the first call
"""


async def start_stuck_run(
    client: Client, tmp_path: Path, handler: str
) -> tuple[WorkerProcess, FlowHandle, Path]:
    """A worker process running a run whose only agent is stuck in its first call."""
    config_path = tmp_path / "agentflow.toml"
    config_path.write_text(STUCK_FLOW.format(handler=handler))
    task_queue = f"stuck-{uuid.uuid4().hex[:8]}"
    address = client.service_client.config.target_host
    worker = WorkerProcess(config_path, task_queue, address, tmp_path / "worker.log").start()
    calls = tmp_path / "calls.log"
    try:
        handle = await Runner(load_config(config_path), client, task_queue).start(
            {"log_file": str(calls)}
        )
        await wait_for_line(calls, "stuck 1")
    except BaseException:
        worker.kill()
        raise
    return worker, handle, calls


async def exit_code_after_sigterm(worker: WorkerProcess, timeout: float = 60.0) -> int | None:
    """SIGTERM the worker; its exit code, or None if it still runs after ``timeout``."""
    assert worker.process is not None
    worker.process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.to_thread(worker.process.wait, timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        worker.kill()


async def test_a_worker_stuck_in_a_sync_handler_stops_and_the_run_completes_elsewhere(
    client: Client, tmp_path: Path
) -> None:
    worker, handle, calls = await start_stuck_run(client, tmp_path, "hang_first_call")
    assert await exit_code_after_sigterm(worker) == 0
    assert "1 sync agent handler(s) still running" in worker.log.read_text()
    with WorkerProcess(worker.config, worker.task_queue, worker.address, worker.log):
        result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.status == "completed"
    assert calls.read_text().splitlines() == ["stuck 1", "stuck 2"]
    assert [r.attempt for r in result.results] == [2]


async def test_a_worker_whose_shutdown_hangs_exits_after_its_bound(
    client: Client, tmp_path: Path
) -> None:
    """An async handler that swallows its cancellation holds the SDK's shutdown for ever; the
    watchdog ends the process (exit 1) instead."""
    worker, handle, _ = await start_stuck_run(client, tmp_path, "ignore_cancellation_first_call")
    try:
        assert await exit_code_after_sigterm(worker) == 1
        assert "s after the stop signal; exiting now" in worker.log.read_text()
    finally:
        await handle.handle.terminate("test over")


# --- a client process's exit ------------------------------------------------------------

FREED_PROBE = """
import asyncio, sys, weakref
from agentflow.client.connection import connect
from agentflow.config import TemporalConfig

def report(_: object) -> None:
    print("freed while finalizing" if sys.is_finalizing() else "freed before finalizing")

PROBE = []

async def main() -> None:
    client = await connect(TemporalConfig(address=sys.argv[1]))
    await client.count_workflows()
    PROBE.append(weakref.ref(client, report))  # the client itself is garbage once main ends

asyncio.run(main())
"""


def test_a_client_process_frees_its_clients_before_the_interpreter_finalises(
    client: Client, tmp_path: Path
) -> None:
    """Freed while CPython finalises, a client's Rust side crashed about one short script in
    ten at exit (SIGSEGV or "PyGILState_Release", temporalio/sdk-python issue 300)."""
    (tmp_path / "probe.py").write_text(FREED_PROBE)
    address = client.service_client.config.target_host
    done = subprocess.run([sys.executable, "probe.py", address], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "freed before finalizing"), done.stderr


# --- run links ------------------------------------------------------------------------------


async def test_run_links_use_temporal_ui_url(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "agentflow.toml"
    config_path.write_text(
        STUCK_FLOW.format(handler="hang_first_call")
        + f'\n[temporal]\naddress = "{client.service_client.config.target_host}"\n'
        + 'ui_url = "https://temporal.example.com/ui/"\n'
    )
    queue = f"links-{uuid.uuid4().hex[:8]}"  # no worker: the run only has to start
    code, out, _ = await cli(
        capsys, "run", "--config", str(config_path), "--task-queue", queue, "--no-wait"
    )
    assert code == 0
    started, link = out.strip().splitlines()
    workflow_id = started.split()[1]
    await client.get_workflow_handle(workflow_id).terminate("test over")
    assert link.startswith(
        f"https://temporal.example.com/ui/namespaces/default/workflows/{workflow_id}/"
    )


async def test_default_run_links() -> None:
    dev = await Client.connect("127.0.0.1:7400", lazy=True)
    assert ui_url(dev, "w 1", "r1") == (
        "http://127.0.0.1:8400/namespaces/default/workflows/w%201/r1/history"
    )
    cloud = await Client.connect("acme.a1b2c.tmprl.cloud:7233", namespace="acme.a1b2c", lazy=True)
    assert ui_url(cloud, "w") == "https://cloud.temporal.io/namespaces/acme.a1b2c/workflows/w"


def test_ui_url_must_be_a_web_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = tmp_path / "agentflow.toml"
    config_path.write_text(
        STUCK_FLOW.format(handler="hang_first_call") + '\n[temporal]\nui_url = "localhost:8233"\n'
    )
    assert main(["validate", "--config", str(config_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "temporal.ui_url: must be the Temporal UI's http:// or https:// address" in err


# --- the demo -------------------------------------------------------------------------------


async def test_demo_tells_the_flows_story_and_keeps_worker_logs_in_a_file(
    client: Client, tmp_path: Path
) -> None:
    port = client.service_client.config.target_host.rpartition(":")[2]  # uses this server
    command = [
        sys.executable, "-m", "agentflow.cli", "demo", "--port", port,
        "--config", str(REPO / "agentflow.toml"),
        "--input", f"@{REPO / 'agentflow' / 'demo' / 'input.json'}",
    ]  # fmt: skip
    demo = await asyncio.create_subprocess_exec(
        *command, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(demo.communicate(), timeout=120)
    shown = output.decode()
    assert demo.returncode == 0, shown
    config = load_config(REPO / "agentflow.toml")
    assert f"flow {config.name!r} ({config.mode} mode)" in shown
    for agent in config.enabled_agents():
        assert f"✓ {agent}" in shown
    assert "Open this run in the Temporal UI:\n  http://" in shown
    # It attached to the test's server, and says so: it neither started nor stops it.
    assert (
        f"using the server already listening on 127.0.0.1:{port}: this demo did not start it "
        "and leaves it running (another port: --port N, or make demo PORT=N)\n"
    ) in shown
    assert "started a Temporal dev server" not in shown
    assert f"  TEMPORAL_ADDRESS=127.0.0.1:{port} agentflow trace " in shown  # not 7233
    assert ".agentflow/demo-worker.log" in shown
    assert " INFO " not in shown and "'workflow_run_id'" not in shown
    worker_log = (tmp_path / ".agentflow" / "demo-worker.log").read_text()
    assert "agent publisher completed" in worker_log
