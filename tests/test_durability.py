"""A worker killed with SIGKILL mid-flow: the run finishes, completed agents do not run again."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.client import Client

from agentflow.client.runner import Runner
from agentflow.config import load_config
from tests._worker_process import WorkerProcess, wait_for_line

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


async def test_sigkilled_worker_resumes_without_rerunning_completed_agents(
    client: Client, tmp_path: Path
) -> None:
    config_path = tmp_path / "agentflow.toml"
    config_path.write_text(FLOW)
    log = tmp_path / "executions.log"
    task_queue = f"durability-{uuid.uuid4().hex[:8]}"
    runner = Runner(load_config(config_path), client, task_queue)

    address = client.service_client.config.target_host
    worker_log = tmp_path / "worker.log"
    first = WorkerProcess(config_path, task_queue, address, worker_log).start()
    try:
        handle = await runner.start({"log_file": str(log), "delays": {"c": 2.0}})
        await wait_for_line(log, "c")  # c is running: kill the worker under it
    finally:
        first.kill()
    with WorkerProcess(config_path, task_queue, address, worker_log):
        result = await asyncio.wait_for(handle.result(), timeout=90)

    executions = log.read_text().split()
    assert result.status == "completed"
    assert result.state.data["trail"] == ["a", "b", "c", "d"]
    assert executions.count("a") == 1 and executions.count("b") == 1
    assert executions.count("c") == 2  # the killed attempt, then the retry
    assert executions.count("d") == 1
    assert [r.attempt for r in result.results] == [1, 1, 2, 1]
