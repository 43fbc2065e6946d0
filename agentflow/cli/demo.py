"""``agentflow demo`` (what ``make demo`` runs): dev server, worker, one run, then stop.

The server and the worker are separate processes, as in production; the dev server keeps its
SQLite file under ``.agentflow/`` so the run is still in the UI the next time it starts. The
terminal shows the flow's story (its agents, the result, where to look next); the worker's
and the server's own logs go to files under ``.agentflow/``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agentflow.cli._common import format_result
from agentflow.client.connection import ui_url
from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, load_config
from agentflow.errors import AgentflowError
from agentflow.models.flow import FlowFailedError
from agentflow.worker.devserver_process import (
    DEFAULT_PORT,
    UI_PORT_OFFSET,
    DevServer,
    check_ports,
    port_in_use,
    stop_signals_interrupt,
)

WORKER_LOG = Path(".agentflow") / "demo-worker.log"
SERVER_LOG = Path(".agentflow") / "demo-server.log"
# Lines of the worker's log shown when it dies before the run ends.
LOG_TAIL_LINES = 20


def run_demo(config_path: str, data: dict[str, Any], port: int, ui_port: int | None) -> int:
    check_ports(port, ui_port)
    config = load_config(config_path)
    print(describe_flow(config))
    with stop_signals_interrupt():  # SIGTERM too stops the worker and the server we started
        server = _server(port, ui_port)
        # Run links: the UI of the server we started, else as `agentflow run` prints them.
        ui_base = server.ui_address if server else config.temporal.ui_url
        try:
            return _run_with_worker(config_path, data, f"127.0.0.1:{port}", ui_base)
        finally:
            if server is not None:
                _stop_server(server)


def _stop_server(server: DevServer) -> None:
    server.stop()
    flags = "" if server.port == DEFAULT_PORT else f" --port {server.port}"
    if server.ui_port != server.port + UI_PORT_OFFSET:
        flags += f" --ui-port {server.ui_port}"
    print(
        f"\nstopped the dev server; its runs stay in {server.db}. Start it again with "
        f"`.venv/bin/agentflow dev{flags}` to open the link above or trace the run."
    )


def describe_flow(config: FlowConfig) -> str:
    """The flow in a few lines: its name, mode, purpose and agents."""
    lines = [f"flow {config.name!r} ({config.mode} mode)"]
    if config.agent_flow.description:
        lines[0] += f": {config.agent_flow.description}"
    names = config.enabled_agents()
    width = max((len(name) for name in names), default=0)
    for name in names:
        lines.append(f"  {name:<{width}}  {config.agents[name].description}".rstrip())
    return "\n".join(lines) + "\n"


def _server(port: int, ui_port: int | None) -> DevServer | None:
    """A dev server on ``port``, unless one already listens there (then None)."""
    if port_in_use("127.0.0.1", port):
        print(
            f"using the server already listening on 127.0.0.1:{port}: this demo did not start "
            "it and leaves it running (another port: --port N, or make demo PORT=N)"
        )
        return None
    server = DevServer(port=port, ui_port=ui_port, log=SERVER_LOG)
    server.start()
    print(f"started a Temporal dev server on {server.address} (its log: {SERVER_LOG})")
    return server


def _run_with_worker(
    config_path: str, data: dict[str, Any], address: str, ui_base: str | None
) -> int:
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "PYTHONUNBUFFERED": "1"}
    WORKER_LOG.parent.mkdir(parents=True, exist_ok=True)
    with WORKER_LOG.open("wb") as log:
        # Its own session: a terminal's Ctrl-C reaches only the demo, which stops it in order.
        worker = subprocess.Popen(
            [sys.executable, "-m", "agentflow.cli", "worker", "--config", config_path],
            env=env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    print(f"started a worker (pid {worker.pid}; its log: {WORKER_LOG})")
    try:
        return asyncio.run(_run_once(config_path, data, address, ui_base, worker))
    finally:
        _stop_worker(worker)


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=30)  # the worker bounds its own shutdown well within this
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


async def _run_once(
    config_path: str,
    data: dict[str, Any],
    address: str,
    ui_base: str | None,
    worker: subprocess.Popen[bytes],
) -> int:
    os.environ["TEMPORAL_ADDRESS"] = address  # the demo's own server, for this process
    runner = Runner.from_config(config_path)
    handle = await runner.start(data)
    print(f"running {handle.workflow_id} …\n", flush=True)
    waiting = asyncio.ensure_future(handle.result())
    while not waiting.done():
        if worker.poll() is not None:  # a dead worker would leave the run waiting forever
            waiting.cancel()
            raise AgentflowError(
                f"the worker exited with code {worker.returncode}; the end of {WORKER_LOG}:\n"
                + _log_tail()
            )
        await asyncio.wait([waiting], timeout=0.5)
    try:
        result = waiting.result()
    except FlowFailedError as err:
        result = err.result
    print(format_result(result, show_state=False))
    report = result.state.data.get("report_path")
    if isinstance(report, str) and Path(report).is_file():
        print(f"\n--- {report} ---\n{Path(report).read_text(encoding='utf-8')}")
    link = ui_url(await runner.client(), handle.workflow_id, handle.run_id, ui_base)
    print(f"Open this run in the Temporal UI:\n  {link}")
    # A server elsewhere than Temporal's default address: the command must say where.
    env = "" if address.endswith(f":{DEFAULT_PORT}") else f"TEMPORAL_ADDRESS={address} "
    print(f"Its step-by-step trace:\n  {env}agentflow trace {handle.workflow_id}")
    print(f"The worker's log (every agent attempt):\n  {WORKER_LOG}")
    return 0 if result.status == "completed" else 1


def _log_tail() -> str:
    lines = WORKER_LOG.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])
