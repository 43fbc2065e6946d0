"""``agentflow demo`` (what ``make demo`` runs): dev server, worker, one run, then stop.

The server and the worker are separate processes, as in production; the dev server keeps its
SQLite file under ``.agentflow/`` so the run is still in the UI the next time it starts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agentflow.cli import format_result
from agentflow.client import Runner
from agentflow.config import load_config
from agentflow.devserver import DevServer, port_in_use
from agentflow.errors import AgentflowError, FlowFailedError

WORKER_SCRIPT = Path(__file__).resolve().parent.parent / "worker.py"


def run_demo(config_path: str, data: dict[str, Any], port: int, ui_port: int) -> int:
    config = load_config(config_path)
    address = f"127.0.0.1:{port}"
    server: DevServer | None = None
    if port_in_use("127.0.0.1", port):
        print(f"using the Temporal server already listening on {address}")
    else:
        server = DevServer(port=port, ui_port=ui_port)
        server.start()
        print(f"started Temporal dev server on {address} (UI {server.ui_address}, db {server.db})")
    env = {**os.environ, "TEMPORAL_ADDRESS": address}
    worker = subprocess.Popen(
        [sys.executable, str(WORKER_SCRIPT), "--config", config_path], env=env
    )
    print(f"started worker (pid {worker.pid}) for flow {config.name!r} ({config.mode} mode)")
    try:
        return asyncio.run(_run_once(config_path, data, address, worker))
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        if server is not None:
            server.stop()
            print(
                f"stopped the dev server; its runs stay in {server.db}. Start it again with "
                "`.venv/bin/agentflow dev` to open the link above or trace the run."
            )


async def _run_once(
    config_path: str, data: dict[str, Any], address: str, worker: subprocess.Popen[bytes]
) -> int:
    os.environ["TEMPORAL_ADDRESS"] = address  # the demo's own server, for this process
    runner = Runner.from_config(config_path)
    handle = await runner.start(data)
    print(f"running {handle.workflow_id} …", flush=True)
    waiting = asyncio.ensure_future(handle.result())
    while not waiting.done():
        if worker.poll() is not None:  # a dead worker would leave the run waiting forever
            waiting.cancel()
            raise AgentflowError(f"the worker exited with code {worker.returncode}; see above")
        await asyncio.wait([waiting], timeout=0.5)
    try:
        result = waiting.result()
    except FlowFailedError as err:
        result = err.result
    print(format_result(result, show_state=False))
    report = result.state.data.get("report_path")
    if isinstance(report, str) and Path(report).is_file():
        print(f"\n--- {report} ---\n{Path(report).read_text(encoding='utf-8')}")
    print(f"Open this run in the Temporal UI:\n  {handle.ui_url}")
    print(f"Its step-by-step trace:\n  agentflow trace {handle.workflow_id}")
    return 0 if result.status == "completed" else 1
