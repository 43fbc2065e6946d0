"""Replay: golden histories of every mode, fresh runs with no workflow cache, and proof that
the replayer catches a workflow that changed what it schedules.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from agentflow.client.runner import Runner
from agentflow.models.flow import FlowFailedError, FlowInput, FlowResult
from agentflow.worker.plugin import ALL_WORKFLOWS
from agentflow.workflows._steps import FlowRun
from tests.bus_goldens import BUS_GOLDENS
from tests.conftest import running_worker
from tests.flows import sample_flows
from tests.llm_goldens import LLM_GOLDENS
from tests.nested_goldens import NESTED_GOLDENS
from tests.session_goldens import SESSION_GOLDENS
from tests.stream_goldens import STREAM_GOLDENS

HISTORIES = Path(__file__).parent / "histories"
GOLDEN = sorted(HISTORIES.glob("*.json"))


def _replayer(workflows: list[type] = ALL_WORKFLOWS) -> Replayer:
    return Replayer(workflows=workflows, data_converter=pydantic_data_converter)


def test_every_sample_flow_has_a_golden_history() -> None:
    expected = set(sample_flows()) | set(SESSION_GOLDENS) | set(BUS_GOLDENS) | set(NESTED_GOLDENS)
    expected |= set(STREAM_GOLDENS) | set(LLM_GOLDENS)
    assert {path.stem for path in GOLDEN} == expected


@pytest.mark.parametrize("path", GOLDEN, ids=[path.stem for path in GOLDEN])
async def test_golden_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"golden-{path.stem}", json.loads(path.read_text()))
    result = await _replayer().replay_workflow(history)
    assert result.replay_failure is None


@pytest.mark.parametrize("name", list(sample_flows()))
async def test_fresh_run_without_cache_replays(client: Client, name: str) -> None:
    config, data, options = sample_flows()[name]
    async with running_worker(client, config, max_cached_workflows=0) as task_queue:
        handle = await Runner(config, client, task_queue).start(data, **options)
        try:
            await handle.result()
        except FlowFailedError:
            assert name.endswith(("failure", "cycle"))
        history = await handle.handle.fetch_history()
    await _replayer().replay_workflow(history)


# Unsandboxed: the sandbox would re-import this test module and its fixtures.
@workflow.defn(name="SequentialFlow", sandboxed=False)
class ReorderedSequentialFlow:
    """A 'refactor' that runs the agents in reverse: replay must reject it."""

    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        run = FlowRun(flow_input)
        agents = list(reversed(flow_input.config.orchestration.sequential_agents))
        return run.finish(await run.sequence(agents, flow_input.state))


async def test_replay_catches_a_changed_workflow() -> None:
    path = HISTORIES / "sequential.json"
    history = WorkflowHistory.from_json("golden-sequential", json.loads(path.read_text()))
    with pytest.raises(NondeterminismError):
        await _replayer([ReorderedSequentialFlow]).replay_workflow(history)


def test_worker_settings_stay_out_of_the_workflow_input() -> None:
    config = sample_flows()["sequential"][0].model_copy(deep=True)
    config.telemetry.headers["authorization"] = "Bearer secret"
    encoded = pydantic_data_converter.payload_converter.to_payloads([config])[0].data
    assert b"secret" not in encoded and b"task_queue" not in encoded


PATTERN_GOLDEN = sorted((HISTORIES / "patterns").glob("*.json"))


@pytest.mark.parametrize("path", PATTERN_GOLDEN, ids=[path.stem for path in PATTERN_GOLDEN])
async def test_pattern_golden_history_replays(path: Path) -> None:
    """[patterns.NAME] workflows (tests/pattern_goldens.py): a sequence, an absence."""
    history = WorkflowHistory.from_json(f"golden-pattern-{path.stem}", json.loads(path.read_text()))
    result = await _replayer().replay_workflow(history)
    assert result.replay_failure is None
