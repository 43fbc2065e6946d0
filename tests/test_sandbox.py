"""agentflow's sandbox runner: engaged on agentflow workers, as strict as Temporal's own, and
able to replay every golden history."""

from __future__ import annotations

import asyncio
import importlib
import importlib.machinery
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from agentflow.worker.plugin import AgentflowPlugin
from agentflow.worker.sandbox import SUPPORTED, AgentflowSandboxRunner, faster_sandbox
from agentflow.worker.serve import build_worker
from tests.conftest import REPO, flow_config
from tests.sandbox_workflows import ReadsWallClock

GOLDEN = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_installed_sdk_is_supported() -> None:
    # If an SDK upgrade changes the private class this relies on, workers fall back to the
    # stock runner silently; this test makes that visible instead.
    assert SUPPORTED


def test_only_the_sdk_default_is_replaced() -> None:
    assert isinstance(faster_sandbox(None), AgentflowSandboxRunner)
    # A runner the application passed itself is kept, the stock sandbox included.
    for chosen in (SandboxedWorkflowRunner(), UnsandboxedWorkflowRunner()):
        assert faster_sandbox(chosen) is chosen


async def test_agentflow_workers_use_it(client: Client) -> None:
    config = flow_config("sequential", {"a": "tests.agents:append"}, sequential_agents=["a"])
    worker = build_worker(client, [(config, REPO)], task_queue="sandbox-default")
    runner = worker.config(active_config=True)["workflow_runner"]
    assert isinstance(runner, AgentflowSandboxRunner)
    # ... and a runner the caller picked wins.
    stock = SandboxedWorkflowRunner()
    worker = build_worker(
        client, [(config, REPO)], task_queue="sandbox-chosen", workflow_runner=stock
    )
    assert worker.config(active_config=True)["workflow_runner"] is stock


async def test_workflow_code_is_still_restricted(client: Client) -> None:
    task_queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    worker = Worker(client, task_queue=task_queue, workflows=[ReadsWallClock],
                    workflow_runner=AgentflowSandboxRunner())  # fmt: skip
    async with worker:
        handle = await client.start_workflow(
            ReadsWallClock.run, id=f"wall-clock-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        try:
            failure = await _first_workflow_task_failure(handle.fetch_history)
        finally:
            await handle.terminate("test done")
    assert "RestrictedWorkflowAccessError" in failure or "datetime.datetime.now" in failure


async def _first_workflow_task_failure(fetch_history: object) -> str:
    for _ in range(100):
        history = await fetch_history()  # type: ignore[operator]
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failure = event.workflow_task_failed_event_attributes.failure
                return f"{failure.message} {failure.cause.message}"
        await asyncio.sleep(0.1)
    raise AssertionError("the workflow task never failed")


@pytest.mark.parametrize("path", GOLDEN, ids=[path.stem for path in GOLDEN])
async def test_golden_history_replays_under_it(path: Path) -> None:
    history = WorkflowHistory.from_json(f"golden-{path.stem}", json.loads(path.read_text()))
    replayer = Replayer(workflows=[], plugins=[AgentflowPlugin()])
    runner = replayer.config(active_config=True)["workflow_runner"]
    assert isinstance(runner, AgentflowSandboxRunner)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


def _modules_run_by(replay: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[set[str]]]:
    """The modules whose code ``replay`` executes (imports inside the sandbox included)."""

    async def run() -> set[str]:
        executed: set[str] = set()
        original = importlib.machinery.SourceFileLoader.exec_module

        def exec_module(loader: Any, module: ModuleType) -> None:
            executed.add(module.__name__)
            original(loader, module)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(importlib.machinery.SourceFileLoader, "exec_module", exec_module)
            await replay()
        return executed

    return run


async def test_beartype_import_hook_is_not_reimported_per_run() -> None:
    # key_value.aio (imported by the MCP clients) installs beartype's import hook for every
    # file import; inside the sandbox that hook imported beartype anew for each workflow
    # instance (~0.8 s of CPU per run on a worker that had used MCP tools).
    importlib.import_module("agentflow.activities.mcp._sessions")
    history = WorkflowHistory.from_json("golden", json.loads(GOLDEN[0].read_text()))

    def replay(runner: SandboxedWorkflowRunner) -> Callable[[], Awaitable[object]]:
        replayer = Replayer(workflows=[], plugins=[AgentflowPlugin()], workflow_runner=runner)
        return lambda: replayer.replay_workflow(history)

    stock = await _modules_run_by(replay(SandboxedWorkflowRunner()))()
    ours = await _modules_run_by(replay(AgentflowSandboxRunner()))()
    assert any(name.startswith("beartype.") for name in stock)  # the hook is active here
    assert not any(name.startswith("beartype") for name in ours)
    assert any(
        name.startswith("agentflow.workflows.") for name in ours
    )  # workflow code: still anew
