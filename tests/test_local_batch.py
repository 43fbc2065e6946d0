"""Consecutive local agents of a sequence run as one local activity (workflows/_batch.py):
each agent keeps its hooks, result and attempt; a failure mid-batch is retried or routed to
its error handler as if the agent had run alone; the trace shows every agent; runs replay.

What a worker crash mid-batch re-runs (the agents whose results were not yet recorded) is
tested for an all-local sequence, which now runs as a batch, by
tests/test_local_activities.py::test_local_flow_completes_after_worker_is_killed.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from agentflow import CallbackArgs, Event, FatalError, State
from agentflow.inspect.trace.read import trace
from agentflow.models.flow import FlowFailedError
from agentflow.names import LOCAL_BATCH
from agentflow.worker.plugin import ALL_WORKFLOWS
from tests.batch_goldens import BATCH_HISTORIES
from tests.conftest import flow_config, flow_runner

# What ran, by session (the worker runs in this process): "agent" or "hook:agent:attempt".
CALLS: defaultdict[str, list[str]] = defaultdict(list)


def work(event: Event, state: State) -> dict[str, Any]:
    """Appends its name to data["trail"]; data["fail"] names an agent that fails fatally,
    data["flaky"] one that fails on its first call in the session."""
    agent, calls = event.target_agent, CALLS[event.session_id]
    first_call = agent not in calls
    calls.append(agent)
    if state.data.get("fail") == agent:
        raise FatalError(f"{agent} cannot do this")
    if state.data.get("flaky") == agent and first_call:
        raise ConnectionError(f"{agent}: the service is down")
    return {"trail": [*state.data.get("trail", []), agent]}


def hook(args: CallbackArgs) -> None:
    CALLS[args.event.session_id].append(f"{args.hook}:{args.agent}:{args.attempt}")


def fixer(event: Event, state: State) -> dict[str, Any]:
    CALLS[event.session_id].append(f"fixer:{state.data['failed_agent']}:{state.data['attempts']}")
    return {"fixed": state.data["failed_agent"]}


def meddle(event: Event, state: State) -> dict[str, Any]:
    """Changes the state it was given in place, then returns its own key."""
    state.data["trail"].append("meddled")
    state.data["meddled"] = True
    return {event.target_agent: 1}


HERE = "tests.test_local_batch"


def _config() -> Any:
    agents = {name: f"{HERE}:work" for name in "abc"} | {"fixer": f"{HERE}:fixer"}
    return flow_config(
        "sequential", agents, sequential_agents=["a", "b", "c"], local_agents=True,
        retry_attempts=1,
        tables={
            "hooks": {point: [f"{HERE}:hook"]
                      for point in ("before_agent_run", "after_agent_run", "agent_error")},
            "error_routing": {"category_handlers": {"fatal": "fixer"}},
        },
    )  # fmt: skip


def _hooked(agent: str, attempt: int = 1) -> list[str]:
    return [f"before_agent_run:{agent}:{attempt}", agent, f"after_agent_run:{agent}:{attempt}"]


async def test_a_batch_behaves_like_agents_run_one_by_one(client: Client) -> None:
    config = _config()
    sessions = {kind: f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("ok", "fatal", "flaky")}
    async with flow_runner(client, config, max_cached_workflows=0) as runner:
        ok = await runner.start({}, session_id=sessions["ok"])
        done = await ok.result()
        fatal = await runner.start({"fail": "b"}, session_id=sessions["fatal"])
        handled = await fatal.result()
        flaky = await runner.start({"flaky": "b"}, session_id=sessions["flaky"])
        retried = await flaky.result()
        histories = [await run.handle.fetch_history() for run in (ok, fatal, flaky)]
        lines = await trace(client, ok.workflow_id)

    # Every agent with its own hooks and result, in one local activity.
    assert done.state.data["trail"] == ["a", "b", "c"]
    assert [(r.agent, r.status, r.attempt) for r in done.results] == [
        ("a", "completed", 1), ("b", "completed", 1), ("c", "completed", 1)]  # fmt: skip
    assert [r.changed_keys for r in done.results] == [["trail"]] * 3
    assert CALLS[sessions["ok"]] == _hooked("a") + _hooked("b") + _hooked("c")
    markers = [e for e in histories[0].events
               if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]  # fmt: skip
    batches = [m for m in markers if LOCAL_BATCH.encode() in m.SerializeToString()]
    assert len(batches) == 1, "a, b and c ran in one local activity"
    assert not any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                   for e in histories[0].events)  # fmt: skip

    # b fails fatally mid-batch: its error hook, then the error handler; c never runs.
    assert handled.status == "handled"
    assert [(r.agent, r.status, r.attempt, r.error_type) for r in handled.results] == [
        ("a", "completed", 1, None), ("b", "failed", 1, "FatalError"),
        ("fixer", "completed", 1, None)]  # fmt: skip
    assert CALLS[sessions["fatal"]] == [*_hooked("a"), "before_agent_run:b:1", "b",
                                        "agent_error:b:1", "before_agent_run:fixer:1",
                                        "fixer:b:1", "after_agent_run:fixer:1"]  # fmt: skip
    assert handled.state.data["fixed"] == "b"

    # b fails once mid-batch: Temporal's second attempt runs it, then c, as before.
    assert retried.state.data["trail"] == ["a", "b", "c"]
    assert [(r.agent, r.attempt) for r in retried.results] == [("a", 1), ("b", 2), ("c", 1)]
    assert CALLS[sessions["flaky"]] == [*_hooked("a"), "before_agent_run:b:1", "b",
                                        "agent_error:b:1", *_hooked("b", 2),
                                        *_hooked("c")]  # fmt: skip

    # The trace shows each agent of the batch as its own step.
    completed = [(line.agent, line.batch) for line in lines if line.action == "completed"
                 and line.agent]  # fmt: skip
    assert [agent for agent, _ in completed] == ["a", "b", "c"]
    assert len({batch for _, batch in completed}) == 3, "one after another, not in parallel"

    # Every task of the three runs replays (no workflow cache above: each task replayed too).
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    for history in histories:
        assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)
                ).replay_failure is None  # fmt: skip


async def test_a_batch_agent_failing_for_good_fails_the_run_naming_its_step(
    client: Client,
) -> None:
    config = _config()
    config.error_routing.category_handlers.clear()
    session = f"down-{uuid.uuid4().hex[:8]}"
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError, match=r"agent 'c' \(step 3 of 3\) failed") as caught:
            await runner.run({"fail": "c"}, session_id=session)
    results = caught.value.result.results
    assert [(r.agent, r.status, r.attempt) for r in results] == [
        ("a", "completed", 1), ("b", "completed", 1), ("c", "failed", 1)]  # fmt: skip
    assert CALLS[session][-2:] == ["c", "agent_error:c:1"]


async def test_an_agent_changing_its_input_leaves_the_previous_result_as_it_was(
    client: Client,
) -> None:
    """b gets a's output as its input, in the same process: what b changes in place is b's
    output, and a's result (the state a passed on) stays what a returned."""
    config = flow_config(
        "sequential", {"a": f"{HERE}:work", "b": f"{HERE}:meddle"}, sequential_agents=["a", "b"],
        local_agents=True,
    )  # fmt: skip
    async with flow_runner(client, config) as runner:
        done = await runner.run({}, session_id=f"meddle-{uuid.uuid4().hex[:8]}")
    assert [r.changed_keys for r in done.results] == [["trail"], ["b", "meddled", "trail"]]
    assert done.state.data == {"trail": ["a", "meddled"], "meddled": True, "b": 1}


async def test_the_batch_session_golden_history_replays() -> None:
    # A session of batches, a mid-batch hand-off to the error handler, a retry after a
    # durable backoff and a dead letter (tests/batch_goldens.py).
    path = BATCH_HISTORIES / "local_batch.json"
    history = WorkflowHistory.from_json("golden-local_batch", json.loads(path.read_text()))
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    assert (await replayer.replay_workflow(history)).replay_failure is None
