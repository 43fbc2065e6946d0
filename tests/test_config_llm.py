"""AgenticGoKit's runtime keys change what Temporal and the worker do: retry_policy is the
agent's RetryPolicy, rate_limit a server-enforced task-queue limit, [runtime] the worker's
concurrency, [logging] its log lines. (The schema and messages: tests/test_agk_files.py.)"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from agentflow.client.runner import Runner
from agentflow.config import LoggingConfig
from agentflow.models.flow import FlowFailedError
from agentflow.names import agent_queue
from agentflow.worker.logs import configure_logging
from agentflow.worker.rate_limits import runtime_options
from agentflow.worker.serve import serving
from tests.conftest import REPO, flow_config, flow_runner


async def test_retry_policy_is_the_agents_temporal_retry_policy(client: Client) -> None:
    policy = {"max_retries": 2, "base_delay_ms": 10, "max_delay_ms": 20, "backoff_factor": 1.5}
    config = flow_config(
        agents={"a": {"handler": "tests.agents:value_error", "retry_policy": policy}},
        sequential_agents=["a"],
    )
    workflow_id = f"retry-policy-{uuid.uuid4().hex[:8]}"
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError, match="bad value"):
            await runner.run({"message": "x"}, workflow_id=workflow_id)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]  # fmt: skip
    started = [e.activity_task_started_event_attributes for e in history.events
               if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]  # fmt: skip
    retry = scheduled[0].retry_policy
    assert (retry.maximum_attempts, retry.backoff_coefficient) == (3, 1.5)
    assert retry.initial_interval.ToMilliseconds() == 10
    assert retry.maximum_interval.ToMilliseconds() == 20
    assert started[0].attempt == 3  # the first try and max_retries = 2 retries


async def test_rate_limited_agent_runs_on_its_own_server_limited_queue(client: Client) -> None:
    config = flow_config(
        agents={
            "free": "tests.agents:append",
            "limited": {"handler": "tests.agents:append", "rate_limit": {"requests_per_second": 4}},
        },
        sequential_agents=["free", "limited"],
        tables={"runtime": {"max_concurrent_agents": 3}},
    )
    queue = f"test-{uuid.uuid4().hex[:10]}"
    limited = agent_queue(queue, "limited")
    assert runtime_options([(config, REPO)], {}) == {
        "max_concurrent_activities": 3,
        "max_concurrent_local_activities": 3,
    }
    async with serving(client, [(config, REPO)], task_queue=queue) as worker:
        assert worker.config()["max_concurrent_activities"] == 3
        workflow_id = f"rate-limit-{uuid.uuid4().hex[:8]}"
        result = await Runner(config, client, queue).run({"message": "x"}, workflow_id=workflow_id)
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=limited),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                report_config=True,
            )
        )
    assert result.status == "completed"
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    queues = [e.activity_task_scheduled_event_attributes.task_queue.name for e in history.events
              if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]  # fmt: skip
    assert queues == [queue, limited]
    # The limit is the server's, for the whole queue: every worker's polls share it.
    assert described.effective_rate_limit.requests_per_second == 4


async def test_logging_json_writes_json_lines(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), [h.formatter for h in root.handlers])
    log_file = tmp_path / "worker.log"
    try:
        configure_logging(
            LoggingConfig(level="debug", format="json", file=str(log_file), file_only=True)
        )
        logging.getLogger("agentflow.test").debug("hello %s", "there", extra={"agent": "a"})
        for handler in root.handlers:
            handler.flush()
        await asyncio.sleep(0)
    finally:
        for handler in root.handlers:
            if handler not in saved[1]:
                handler.close()
        root.handlers[:] = saved[1]
        for handler, formatter in zip(saved[1], saved[2], strict=True):
            handler.setFormatter(formatter)
        root.setLevel(saved[0])
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert lines[-1]["message"] == "hello there" and lines[-1]["level"] == "debug"
    assert lines[-1]["agent"] == "a" and lines[-1]["run_id"] == "-"
