"""Hostile input through real runs (issue 23): what used to fail a workflow task again and again
until the run timed out, or came out as a misleading or screen-filling message.

Against the real dev server: a run input too large for a Temporal payload or with too many keys
(refused at start, or let through by a ``[payloads]`` store), a handler that returns a State it
never validated, a handler that kills its own worker, and a 10,000-character failure message
on the terminal.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow import FlowFailedError
from agentflow.client.connection import data_converter
from agentflow.client.runner import Runner
from agentflow.config import PayloadsConfig, load_config
from agentflow.errors import ConfigError
from agentflow.limits import MAX_DATA_ITEMS
from agentflow.models.flow import Event, State
from agentflow.worker.serve import build_worker
from tests._worker_process import WorkerProcess
from tests.conftest import REPO, cli, flow_config, flow_runner, running_worker

# ---------------------------------------------------------------- handlers used by the runs


def unvalidated_state(event: Event, state: State) -> State:
    return State.model_construct(data=["not", "a", "dict"])


def exits_its_worker(event: Event, state: State) -> None:
    if sys.argv[0].endswith("worker.py"):  # only the child worker process, never pytest's
        os._exit(1)
    raise RuntimeError("exits_its_worker ran outside worker.py")


def long_message(event: Event, state: State) -> None:
    raise ValueError("the long story: " + "y" * 10_000)


def echo(event: Event, state: State) -> dict[str, Any]:
    return {"keys": len(state.data)}


# ---------------------------------------------------------------- run inputs

ECHO = flow_config("sequential", {"x": "tests.test_hostile_runs:echo"}, sequential_agents=["x"])


async def test_input_over_a_payload_is_refused_at_start(client: Client) -> None:
    runner = Runner(ECHO, client, task_queue=f"none-{uuid.uuid4().hex[:8]}")  # no worker needed
    with pytest.raises(ConfigError) as raised:
        await runner.start({"blob": "x" * 3_000_000})
    message = str(raised.value)
    assert message.startswith("--input: the run's input is 3.0 MB as JSON with the flow's config")
    assert "a Temporal payload is at most 2.1 MB" in message
    assert "with a [payloads] table" in message
    listed = [w async for w in client.list_workflows(f"TaskQueue = '{runner.task_queue}'")]
    assert listed == []  # nothing reached the server


async def test_input_near_the_limit_runs(client: Client) -> None:
    async with flow_runner(client, ECHO) as runner:
        result = await runner.run({"blob": "x" * 1_900_000})
    assert result.status == "completed" and result.state.data["keys"] == 1


async def test_payload_store_lets_a_large_input_through(client: Client, tmp_path: Path) -> None:
    converter = await data_converter(None, PayloadsConfig(path=str(tmp_path / "payloads")))
    stored = await Client.connect(client.service_client.config.target_host,
                                  data_converter=converter)  # fmt: skip
    async with running_worker(stored, ECHO) as task_queue:
        result = await Runner(ECHO, stored, task_queue).run({"blob": "x" * 3_000_000})
    assert result.status == "completed" and result.state.data["keys"] == 1
    assert any((tmp_path / "payloads").rglob("*"))  # it went through the store


@pytest.mark.parametrize("payloads", [False, True])
async def test_too_many_keys_are_refused_with_their_own_reason(
    client: Client, tmp_path: Path, payloads: bool
) -> None:
    if payloads:
        converter = await data_converter(None, PayloadsConfig(path=str(tmp_path / "p")))
        client = await Client.connect(client.service_client.config.target_host,
                                      data_converter=converter)  # fmt: skip
    runner = Runner(ECHO, client, task_queue="none")
    with pytest.raises(ConfigError) as raised:
        await runner.start({str(i): 0 for i in range(200_000)})  # 2.2 MB, 200,000 keys
    message = str(raised.value)
    assert message.startswith(f"--input: holds more than {MAX_DATA_ITEMS:,} keys and list items")
    assert "deadlock detector" in message and "[payloads] does not help here" in message


# ---------------------------------------------------------------- handlers


async def test_unvalidated_state_fails_the_agent_at_once(client: Client) -> None:
    config = flow_config("sequential", {"x": "tests.test_hostile_runs:unvalidated_state"},
                         sequential_agents=["x"], retry_attempts=3)  # fmt: skip
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await asyncio.wait_for(runner.run({}), 30)
    [agent] = raised.value.result.results
    assert (agent.status, agent.attempt, agent.error_type) == ("failed", 1, "AgentOutputError")
    assert "agent 'x' built an invalid State: data: Input should be a valid dictionary (got " \
           "['not', 'a', 'dict'])" in (agent.error or "")  # fmt: skip


FLOW = """
[agent_flow]
name = "hostile-exit"
[orchestration]
mode = "sequential"
sequential_agents = ["h"]
timeout_seconds = 120
[agents.h]
handler = "tests.test_hostile_runs:exits_its_worker"
retry_attempts = 0
timeout_seconds = 60   # heartbeat timeout: 10 s
"""


async def test_handler_that_kills_its_worker_says_so(client: Client, tmp_path: Path) -> None:
    config_path = tmp_path / "agentflow.toml"
    config_path.write_text(FLOW)
    config = load_config(config_path)
    task_queue = f"exit-{uuid.uuid4().hex[:8]}"
    address = client.service_client.config.target_host
    process = WorkerProcess(config_path, task_queue, address, tmp_path / "worker.log").start()
    try:
        handle = await Runner(config, client, task_queue).start({})
        await asyncio.wait_for(asyncio.to_thread(process.process.wait), 30)  # type: ignore[union-attr]
    finally:
        process.kill()
    # A worker of this process finishes the run; the agent itself is not tried again.
    async with build_worker(client, [(config, REPO)], task_queue=task_queue):
        with pytest.raises(FlowFailedError) as raised:
            await asyncio.wait_for(handle.result(), 60)
    [agent] = raised.value.result.results
    assert agent.error == (
        "the worker running agent 'h' stopped (heartbeat lost) on attempt 1 of 1: it exited, "
        "was killed or lost the server"
    )
    assert agent.error_type == "Timeout"  # [error_routing] still sorts it as a timeout


# ---------------------------------------------------------------- the terminal


async def test_long_failure_message_is_one_short_line(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "agentflow.toml"
    address = client.service_client.config.target_host
    task_queue = f"long-{uuid.uuid4().hex[:8]}"
    config_path.write_text(
        '[agent_flow]\nname = "hostile-long"\n[orchestration]\nmode = "sequential"\n'
        'sequential_agents = ["h"]\n[agents.h]\nhandler = "tests.test_hostile_runs:long_message"'
        f'\nretry_attempts = 0\n[temporal]\naddress = "{address}"\ntask_queue = "{task_queue}"\n'
    )
    config = load_config(config_path)
    async with build_worker(client, [(config, REPO)], task_queue=task_queue):
        code, out, _ = await cli(capsys, "run", "--config", str(config_path),
                                 "--workflow-id", "long-" + task_queue)  # fmt: skip
        assert code == 1
        lines = out.splitlines()
        assert max(len(line) for line in lines) < 500
        [row] = [line for line in lines if line.lstrip().startswith("✗ h")]
        code, out, _ = await cli(capsys, "run", "--config", str(config_path), "--json")
    assert code == 1
    whole = json.loads(out)["results"][0]["error"]  # the whole message, in --json
    assert whole.startswith("ValueError: the long story: yyy") and len(whole) > 10_000
    assert f"ValueError: the long story: {'y' * 200}" in row
    assert row.endswith(f"… (cut; {len(whole):,} characters: `agentflow run --json`, or "
                        f"`agentflow trace long-{task_queue}`)")  # fmt: skip
