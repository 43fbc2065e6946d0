"""``local = true``: agents as Temporal local activities, and what a worker crash re-runs."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner

import agentflow.workflows.loop as loop_workflow
from agentflow.client.runner import Runner
from agentflow.config import load_config
from agentflow.errors import ConfigError
from agentflow.inspect.trace.read import run_histories
from agentflow.models.flow import FlowFailedError
from tests._worker_process import WorkerProcess, wait_for_line, wait_for_lines
from tests.conftest import flow_config, flow_runner

THREE = {"a": "tests.agents:append", "b": "tests.agents:async_append", "c": "tests.agents:append"}


async def event_types(runner: Runner, workflow_id: str) -> Counter[int]:
    client = await runner.client()
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return Counter(event.event_type for event in history.events)


async def test_local_agents_run_without_activity_tasks(client: Client) -> None:
    config = flow_config("sequential", THREE, sequential_agents=["a", "b", "c"], local_agents=True)
    # No workflow cache: every workflow task replays the markers recorded so far.
    async with flow_runner(client, config, max_cached_workflows=0) as runner:
        handle = await runner.start({"trail": []})
        result = await handle.result()
        events = await event_types(runner, handle.workflow_id)
    assert result.state.data["trail"] == ["a", "b", "c"]
    assert [r.status for r in result.results] == ["completed"] * 3
    # The local-agent-batch patch's marker and one batch of a, b, c (workflows/_batch.py).
    assert events[EventType.EVENT_TYPE_MARKER_RECORDED] == 2
    assert events[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED] == 0


async def test_agent_option_overrides_the_flow_default(client: Client) -> None:
    agents = {"a": {"handler": THREE["a"], "local": False}, "b": THREE["b"], "c": THREE["c"]}
    config = flow_config("sequential", agents, sequential_agents=["a", "b", "c"], local_agents=True)
    assert [config.is_local(name) for name in "abc"] == [False, True, True]
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"trail": []})
        await handle.result()
        events = await event_types(runner, handle.workflow_id)
    assert events[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED] == 1
    # Two patch markers (agent-activity-type, local-agent-batch) and one batch of b, c.
    assert events[EventType.EVENT_TYPE_MARKER_RECORDED] == 3


async def test_local_agent_failure_fails_the_flow_after_its_retries(
    client: Client, tmp_path: Path
) -> None:
    agents = {"a": {"handler": "tests.agents:flaky", "local": True, "retry_attempts": 1}}
    config = flow_config("sequential", agents, sequential_agents=["a"])
    async with flow_runner(client, config) as runner:
        data = {"counter_file": str(tmp_path / "calls"), "fail_times": 5}
        with pytest.raises(FlowFailedError, match="transient failure 2") as caught:
            await runner.run(data)
    assert (tmp_path / "calls").read_text() == "2"
    assert caught.value.result.results[0].attempt == 2


def test_local_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"agents\.a\.local"):
        flow_config("sequential", {"a": {"handler": THREE["a"], "local": "maybe"}},
                    sequential_agents=["a"])  # fmt: skip
    with pytest.raises(ConfigError, match="did you mean 'local_agents'"):
        flow_config("sequential", THREE, sequential_agents=["a"], local_agent=True)


CRASH_FLOW = """
[agent_flow]
name = "local-crash"

[orchestration]
mode = "sequential"
sequential_agents = ["a", "b", "c"]
local_agents = true
# The next worker takes over once the dead one's workflow task times out (default 10 s). The
# SDK records local results every 80 % of it (3.2 s): b runs 3 s and the kill lands as b starts.
workflow_task_timeout_seconds = 4

[orchestration.retry]
initial_interval_seconds = 0.05

[agents.a]
handler = "tests.agents:record"
local = {a_local}

[agents.b]
handler = "tests.agents:record"

[agents.c]
handler = "tests.agents:record"
"""


@pytest.mark.parametrize(
    ("a_local", "expected_runs"),
    [
        # All local: nothing is recorded until the workflow task completes, so the crash
        # while b runs loses a's result too and both run again.
        (True, {"a": 2, "b": 2, "c": 1}),
        # A regular agent before them completes a workflow task: a is recorded; only the
        # local agent that was running when the worker died runs again.
        (False, {"a": 1, "b": 2, "c": 1}),
    ],
    ids=["all-local", "regular-then-local"],
)
async def test_local_flow_completes_after_worker_is_killed(
    client: Client, tmp_path: Path, a_local: bool, expected_runs: dict[str, int]
) -> None:
    config_path = tmp_path / "agentflow.toml"
    config_path.write_text(CRASH_FLOW.format(a_local=str(a_local).lower()))
    task_queue = f"test-{uuid.uuid4().hex[:10]}"
    runner = Runner(load_config(config_path), client, task_queue)
    runs = tmp_path / "runs.log"
    address = client.service_client.config.target_host
    worker = WorkerProcess(config_path, task_queue, address, tmp_path / "worker.log")
    with worker:
        handle = await runner.start({"trail": [], "log_file": str(runs), "delays": {"b": 3}})
        await wait_for_line(runs, "b")
        worker.kill()
    assert "c" not in runs.read_text().split(), "the worker was killed too late"
    with worker:  # a new worker process takes over once the dead one's workflow task times out
        result = await handle.result()
    assert result.status == "completed"
    assert result.state.data["trail"] == ["a", "b", "c"]
    assert Counter(runs.read_text().split()) == expected_runs


LOCAL_LOOP = """
[agent_flow]
name = "local-loop-crash"

[orchestration]
mode = "loop"
loop_agent = "n"
max_iterations = 40
local_agents = true
workflow_task_timeout_seconds = 2

[agents.n]
handler = "tests.agents:record"
"""
STEP_SECONDS = 0.25


async def test_a_short_workflow_task_timeout_narrows_the_crash_window(
    client: Client, tmp_path: Path
) -> None:
    # The SDK records the local results so far every 80 % of the workflow task timeout; with
    # 2 s that is 1.6 s of local work, so a crash re-runs at most the steps of that window and
    # the one in progress. (With the default 10 s, every one of the ~16 steps would re-run.)
    config_path = tmp_path / "agentflow.toml"
    config_path.write_text(LOCAL_LOOP)
    task_queue = f"test-{uuid.uuid4().hex[:10]}"
    runner = Runner(load_config(config_path), client, task_queue)
    runs = tmp_path / "runs.log"
    worker = WorkerProcess(config_path, task_queue, client.service_client.config.target_host,
                           tmp_path / "worker.log")  # fmt: skip
    with worker:
        data = {"trail": [], "log_file": str(runs), "delays": {"n": STEP_SECONDS}}
        handle = await runner.start(data)
        await wait_for_lines(runs, 16)
        worker.kill()
    before_crash = len(runs.read_text().split())
    with worker:
        result = await handle.result()
    assert result.status == "completed" and result.iterations == 40
    reruns = len(runs.read_text().split()) - 40
    window = math.ceil(0.8 * 2 / STEP_SECONDS) + 1
    assert 0 < reruns <= window < before_crash


async def test_every_run_of_a_loop_keeps_the_workflow_task_timeout(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_workflow, "ITERATIONS_PER_RUN", 2)
    loop = flow_config("loop", {"c": "tests.agents:counter"}, loop_agent="c", max_iterations=5,
                       workflow_task_timeout_seconds=3)  # fmt: skip
    async with flow_runner(client, loop, workflow_runner=UnsandboxedWorkflowRunner()) as runner:
        handle = await runner.start({})
        await handle.result()
        timeouts = [
            events[0].workflow_execution_started_event_attributes.workflow_task_timeout.seconds
            async for _, events in run_histories(client, handle.workflow_id)
        ]
    assert timeouts == [3, 3, 3]


async def test_local_agent_with_large_state_fails_clearly(client: Client) -> None:
    # 3 MB would pass a regular agent's check only to be cut at 2 MB; 300 KB is fine for a
    # regular agent but too much for a local one, whose results share one workflow task.
    agents = {"a": {"handler": "tests.agents:grow", "local": True}, "b": THREE["b"]}
    config = flow_config("sequential", agents, sequential_agents=["a", "b"])
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError, match=r"agent 'a' returned a state of 0\.3 MB.*local"):
            await runner.run({"grow_bytes": 300 * 1024})
        config.agents["a"].local = False
        result = await runner.run({"grow_bytes": 300 * 1024})
    assert len(result.state.data["blob"]) == 300 * 1024
