"""The ``progress`` query and the UI's current details, read while a run is going."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from agentflow.client.runner import FlowHandle
from agentflow.models.flow import FlowProgress
from tests.conftest import flow_config, flow_runner


async def _wait_for(handle: FlowHandle, running: list[str]) -> FlowProgress:
    """Poll the query until ``running`` is what runs (the gate holds it there)."""
    for _ in range(400):
        progress = await handle.progress()
        if progress.running == running:
            return progress
        await asyncio.sleep(0.05)
    raise AssertionError(f"never saw {running} running; last progress {progress}")


async def test_progress_mid_sequential_run(client: Client, tmp_path: Path) -> None:
    config = flow_config(
        "sequential",
        {"a": "tests.agents:append", "b": "tests.obs_agents:gate", "c": "tests.agents:append"},
        sequential_agents=["a", "b", "c"],
    )
    gate = tmp_path / "gate"
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"gate_file": str(gate)})
        mid = await _wait_for(handle, ["b"])
        assert (mid.total, mid.completed, mid.failed, mid.step) == (3, 1, 0, 2)
        assert (mid.flow, mid.mode, mid.last_agent) == ("test-sequential", "sequential", "a")
        # What the Temporal UI shows as the run's current details.
        metadata = await handle.handle.query(
            "__temporal_workflow_metadata", result_type=WorkflowMetadata
        )
        assert "running b" in metadata.current_details
        assert "step 2 of 3" in metadata.current_details
        gate.touch()
        await handle.result()
        done = await handle.progress()
    assert (done.completed, done.failed, done.running, done.step) == (3, 0, [], 3)


async def test_progress_counts_parallel_failures(client: Client, tmp_path: Path) -> None:
    config = flow_config(
        "collaborative",
        {"ok": "tests.agents:append", "bad": "tests.agents:fatal", "slow": "tests.obs_agents:gate"},
        collaborative_agents=["ok", "bad", "slow"],
        failure_threshold=0.5,
    )
    gate = tmp_path / "gate"
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"gate_file": str(gate)})
        for _ in range(400):
            mid = await handle.progress()
            if mid.completed + mid.failed == 2:
                break
            await asyncio.sleep(0.05)
        assert (mid.total, mid.completed, mid.failed, mid.running) == (3, 1, 1, ["slow"])
        gate.touch()
        result = await handle.result()
        final = await handle.progress()
    assert result.status == "completed"
    assert (final.completed, final.failed, final.running) == (2, 1, [])
