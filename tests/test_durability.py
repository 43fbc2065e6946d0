"""A worker killed with SIGKILL mid-flow: the run finishes, completed agents do not run again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from temporalio.client import Client

from agentflow.client import Runner
from agentflow.config import load_config
from tests.conftest import REPO

FLOW = """
[agent_flow]
name = "durability"

[orchestration]
mode = "sequential"
sequential_agents = ["a", "b", "c", "d"]
timeout_seconds = 120

[orchestration.retry]
initial_interval_seconds = 0.1

[agents.a]
handler = "tests.agents:record"
[agents.b]
handler = "tests.agents:record"
[agents.c]
handler = "tests.agents:record"
timeout_seconds = 5   # heartbeat timeout too: a dead worker's attempt is retried after 5 s
[agents.d]
handler = "tests.agents:record"
"""


def start_worker(client: Client, config: Path, task_queue: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TEMPORAL_ADDRESS": client.service_client.config.target_host}
    command = [sys.executable, str(REPO / "worker.py"), "--config", str(config),
               "--task-queue", task_queue]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=REPO)


async def wait_for_line(log: Path, line: str, worker: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if log.exists() and line in log.read_text().split():
            return
        assert worker.poll() is None, "the worker exited before the flow got there"
        await asyncio.sleep(0.1)
    raise AssertionError(f"{line!r} never ran")


async def test_sigkilled_worker_resumes_without_rerunning_completed_agents(
    client: Client, tmp_path: Path
) -> None:
    config_path = tmp_path / "agentflow.toml"
    config_path.write_text(FLOW)
    log = tmp_path / "executions.log"
    task_queue = f"durability-{uuid.uuid4().hex[:8]}"
    runner = Runner(load_config(config_path), client, task_queue)

    first = start_worker(client, config_path, task_queue)
    try:
        handle = await runner.start({"log_file": str(log), "delays": {"c": 2.0}})
        await wait_for_line(log, "c", first)  # c is running: kill the worker under it
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    second = start_worker(client, config_path, task_queue)
    try:
        result = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        second.terminate()
        second.wait(timeout=30)

    executions = log.read_text().split()
    assert result.status == "completed"
    assert result.state.data["trail"] == ["a", "b", "c", "d"]
    assert executions.count("a") == 1 and executions.count("b") == 1
    assert executions.count("c") == 2  # the killed attempt, then the retry
    assert executions.count("d") == 1
    assert [r.attempt for r in result.results] == [1, 1, 2, 1]
