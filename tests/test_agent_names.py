"""Agents by name: each agent is its own activity type, ``agent:NAME``
(agentflow/activity_types.py), wherever a Temporal user looks: the history, ``temporal
workflow show``, the SDK's own activity metrics, the failure, agentflow's trace; and runs from
before the ``agent-activity-type`` patch (every agent ``run_agent``) still replay and trace.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.worker import Replayer

from agentflow.inspect.trace._decoder import decode_run
from agentflow.inspect.trace.read import trace
from agentflow.models.flow import FlowFailedError
from agentflow.worker.devserver_process import temporal_binary
from agentflow.worker.plugin import ALL_WORKFLOWS
from tests.agent_type_goldens import AGENT_TYPE_HISTORIES, named_agents_config
from tests.conftest import flow_runner

PATCH_MARKER = "core_patch"
LOCAL_MARKER = "core_local_activity"


async def _show(client: Client, workflow_id: str, *flags: str) -> str:
    """``temporal workflow show`` as a user runs it."""
    process = await asyncio.create_subprocess_exec(
        temporal_binary(), "workflow", "show", "--workflow-id", workflow_id, *flags,
        "--address", client.service_client.config.target_host, "--namespace", client.namespace,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


def _sections(shown: str) -> dict[str, str]:
    """``--detailed`` output: event type and id ("ActivityTaskFailed 16") -> its lines."""
    found: dict[str, str] = {}
    pieces = re.split(r"^-+ \[(\d+)\] (\w+) -+$", shown, flags=re.M)
    for number, kind, body in zip(pieces[1::3], pieces[2::3], pieces[3::3], strict=True):
        found[f"{kind} {number}"] = body
    return found


def _metric_types(buffer: MetricBuffer) -> dict[str, set[str]]:
    """SDK metric name -> the activity types it was reported for."""
    seen: dict[str, set[str]] = defaultdict(set)
    for update in buffer.retrieve_updates():
        kind = update.attributes.get("activity_type")
        if isinstance(kind, str):
            seen[update.metric.name].add(kind)
    return seen


async def test_agents_are_named_in_history_cli_metrics_failure_and_trace(client: Client) -> None:
    # A client of its own, on a runtime whose metrics we can read: the worker built from it
    # reports the SDK's activity metrics there.
    buffer = MetricBuffer(10_000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    metered = await Client.connect(
        client.service_client.config.target_host, namespace=client.namespace,
        data_converter=pydantic_data_converter, runtime=runtime,
    )  # fmt: skip
    async with flow_runner(metered, named_agents_config()) as runner:
        handle = await runner.start({})
        with pytest.raises(FlowFailedError) as failed:
            await handle.result()
    # The run's failure names the agent (and so does its row, below).
    assert "agent 'c'" in str(failed.value)

    history = await handle.handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["agent:a", "agent:c"]
    markers = [e.marker_recorded_event_attributes for e in history.events
               if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]  # fmt: skip
    assert PATCH_MARKER in [m.marker_name for m in markers]
    [local] = [m for m in markers if m.marker_name == LOCAL_MARKER]
    [info] = await client.data_converter.decode(local.details["data"].payloads, [dict])
    assert info["activity_type"] == "agent:b"

    # `temporal workflow show`: its table has only ids, times and event types (the CLI
    # prints nothing more there), and its result names the failed agent; --detailed shows
    # each agent's type, summary, and on the failed attempt the agent in the failure.
    table = await _show(client, handle.workflow_id)
    assert "ActivityTaskFailed" in table and "agent 'c' (step 1 of 1) failed" in table, table
    sections = _sections(await _show(client, handle.workflow_id, "--detailed"))
    scheduled_types = [
        re.search(r"^activityType\.name: (.+)$", body, re.M)
        for key, body in sections.items()
        if key.startswith("ActivityTaskScheduled")
    ]
    assert [m.group(1) for m in scheduled_types if m] == ["agent:a", "agent:c"], sections
    [failed_attempt] = [body for key, body in sections.items()
                        if key.startswith("ActivityTaskFailed")]  # fmt: skip
    assert "details[0].agent: c" in failed_attempt, failed_attempt

    # The SDK's own metrics are labelled per agent, local agents too.
    types = _metric_types(buffer)
    assert {"agent:a", "agent:c"} <= types["temporal_activity_execution_latency"], types
    assert "agent:c" in types["temporal_activity_execution_failed"], types
    assert "agent:b" in types["temporal_local_activity_execution_latency"], types

    # agentflow's trace reads the new types.
    entries = await trace(client, handle.workflow_id)
    steps = {(e.agent, e.action) for e in entries if e.agent}
    assert {("a", "completed"), ("b", "completed"), ("c", "failed")} <= steps, steps


@pytest.mark.parametrize("name", ["before_patch", "after_patch"])
async def test_histories_before_and_after_the_patch_replay_and_trace(
    client: Client, name: str
) -> None:
    path = AGENT_TYPE_HISTORIES / f"{name}.json"
    history = WorkflowHistory.from_json(f"golden-{name}", json.loads(path.read_text()))
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
    types = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    assert types == ({"run_agent"} if name == "before_patch" else {"agent:a", "agent:c"})
    entries = await decode_run(client, history.workflow_id, "golden", list(history.events))
    steps = [(e.agent, e.action) for e in entries if e.agent]
    if name == "before_patch":  # sequential a, b; b fails
        assert steps == [("a", "started"), ("a", "completed"), ("b", "started"), ("b", "failed")]
    else:  # a and local b in parallel, then c fails
        assert {("a", "completed"), ("b", "completed"), ("c", "failed")} <= set(steps), steps
