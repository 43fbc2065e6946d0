"""The ``progress`` query and the UI's current details, read while a run is going, and what
``agentflow status`` says a finished run did."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from agentflow.client.approvals import ApprovalDecisionError
from agentflow.client.runner import FlowHandle, Runner
from agentflow.client.visibility import query_progress
from agentflow.models.flow import FlowFailedError, FlowProgress
from tests.conftest import cli, flow_config, flow_runner


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


# --- what a finished run did, per mode (what `agentflow status` prints) ------------------

ASK = "tests.approval_agents:ask"


async def _approve_when_asked(runner: Runner, workflow_id: str, approve: bool) -> None:
    """Decide the run's one waiting approval as soon as it waits."""
    for _ in range(400):
        try:
            if approve:
                await runner.approve(workflow_id)
            else:
                await runner.reject(workflow_id, "no")
            return
        except ApprovalDecisionError:  # nothing waits yet
            await asyncio.sleep(0.05)
    raise AssertionError("no approval ever waited")


async def _status_line(capsys: pytest.CaptureFixture[str], workflow_id: str) -> str:
    code, out, err = await cli(capsys, "status", workflow_id)
    assert code in (0, 1) and "Traceback" not in err
    return out.splitlines()[1]


@pytest.mark.parametrize("approve", [True, False])
async def test_a_handler_approval_counts_once_and_a_rejection_as_a_failure(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str], approve: bool
) -> None:
    config = flow_config(
        "sequential", {"a": "tests.agents:append", "ask": ASK, "c": "tests.agents:append"},
        sequential_agents=["a", "ask", "c"],
    )  # fmt: skip
    async with flow_runner(client, config) as runner:
        handle = await runner.start({})
        await _approve_when_asked(runner, handle.workflow_id, approve)
        with contextlib.suppress(FlowFailedError):
            await handle.result()
        final = await handle.progress()
        line = await _status_line(capsys, handle.workflow_id)
    if approve:  # the handler asked, then ran again once approved: one step, done once
        assert (final.total, final.completed, final.failed, final.step) == (3, 3, 0, 3)
        assert line.startswith("3/3 done · 0 failed · ")
    else:  # rejected: ask failed, c never ran
        assert (final.total, final.completed, final.failed, final.step) == (3, 1, 1, 2)
        assert line.startswith("1/3 done · 1 failed · 1 not run · ")


async def test_a_loop_counts_the_iterations_it_ran_not_its_cap(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = flow_config("loop", {"c": "tests.agents:counter"}, loop_agent="c", max_iterations=10)
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"stop_at": 4})
        await handle.result()
        final = await handle.progress()
        line = await _status_line(capsys, handle.workflow_id)
    assert (final.total, final.completed, final.failed) == (4, 4, 0)
    assert line.startswith("4/4 done · 0 failed · ")


async def test_a_failed_sequential_run_says_what_never_ran(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = flow_config(
        "sequential", {"a": "tests.agents:fatal", "b": "tests.agents:append",
                       "c": "tests.agents:append"}, sequential_agents=["a", "b", "c"],
    )  # fmt: skip
    async with flow_runner(client, config) as runner:
        handle = await runner.start({})
        with pytest.raises(FlowFailedError):
            await handle.result()
        final = await handle.progress()
        line = await _status_line(capsys, handle.workflow_id)
    assert (final.total, final.completed, final.failed) == (3, 0, 1)
    assert line.startswith("0/3 done · 1 failed · 2 not run · ")


async def test_a_session_answers_for_the_event_it_runs_now(client: Client, tmp_path: Path) -> None:
    """A session registers the query's handler once and points it at each event's progress:
    mid-way through its second event it reports that event, not the first one it finished."""
    config = flow_config(
        "sequential",
        {"a": "tests.agents:append", "b": "tests.obs_agents:gate"},
        sequential_agents=["a", "b"],
    )
    gate = tmp_path / "gate"
    async with flow_runner(client, config) as runner:
        gate.touch()
        first = await runner.emit({"gate_file": str(gate)}, session_id="s1", wait=True)
        assert (await first.outcome()).status == "completed"
        session = client.get_workflow_handle(first.workflow_id)
        done = await query_progress(session)
        assert (done.completed, done.step, done.running) == (2, 2, [])
        gate.unlink()
        second = await runner.emit({"gate_file": str(gate)}, session_id="s1")
        for _ in range(400):
            mid = await query_progress(session)
            if mid.running == ["b"]:
                break
            await asyncio.sleep(0.05)
        assert (mid.completed, mid.step, mid.running, mid.last_agent) == (1, 2, ["b"], "a")
        gate.touch()
        assert (await second.outcome()).status == "completed"
        again = await query_progress(session)
    assert (again.completed, again.step, again.running, again.last_agent) == (2, 2, [], "b")
