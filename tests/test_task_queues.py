"""Each flow's work reaches only the workers that serve it: a flow's own task queue by
default, workers that say which flows they serve, and a warning when flows share a queue."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from agentflow.client.dead_letters import list_letters
from agentflow.client.runner import Runner
from agentflow.client.visibility import has_workers, visibility_query
from agentflow.config import FlowConfig, parse_config
from agentflow.errors import ConfigError
from agentflow.names import LEGACY_TASK_QUEUE, agent_queue, session_workflow_id
from agentflow.worker.queues import flows_of, queue_groups, worker_identity
from agentflow.worker.serve import serving
from tests.conftest import REPO


def flow(name: str, handler: str, **temporal: Any) -> FlowConfig:
    raw = {
        "agent_flow": {"name": name},
        "orchestration": {"mode": "sequential", "sequential_agents": ["step"]},
        "agents": {"step": {"handler": handler}},
        "temporal": temporal,
    }
    return parse_config(raw, base_dir=REPO, check_handlers=True)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def poller_flows(client: Client, queue: str) -> set[frozenset[str] | None]:
    """The flows each worker polling ``queue`` names (None: it names none)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=queue),
                                 task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
    )  # fmt: skip
    return {flows_of(poller.identity) for poller in response.pollers}


def test_a_flow_has_its_own_queue_unless_its_file_names_one() -> None:
    mine = flow("orders", "tests.agents:append")
    assert mine.task_queue == "agentflow:orders" and mine.temporal.task_queue is None
    named = flow("orders", "tests.agents:append", task_queue="shared")
    assert named.task_queue == "shared"
    longest = flow("n" * 200, "tests.agents:append")  # flow names: at most 200 bytes
    assert len(agent_queue(longest.task_queue, "a" * 200).encode()) <= 1000  # Temporal's limit
    with pytest.raises(ConfigError, match="task_queue: is 1001 bytes"):
        flow("x", "tests.agents:append", task_queue="q" * 1001)
    other = flow("billing", "tests.agents:async_append")
    pairs = [(mine, REPO), (other, REPO), (named, REPO)]
    assert queue_groups(pairs) == {"agentflow:orders": [pairs[0]], "agentflow:billing": [pairs[1]],
                                   "shared": [pairs[2]]}  # fmt: skip
    assert queue_groups(pairs, "one") == {"one": pairs}


def test_a_worker_identity_names_its_flows() -> None:
    identity = worker_identity("12@host", ["b", "a, with comma", "b"])
    assert identity.startswith("12@host ") and flows_of(identity) == {"a, with comma", "b"}
    assert flows_of("12@host") is None and flows_of("12@host agentflow-flows=[1]") is None
    assert worker_identity("12@host", ["x" * 200] * 1 + ["y" * 200, "z" * 200, "w" * 200,
                                                          "v" * 200]) == "12@host"  # fmt: skip


async def test_two_flows_on_one_server_each_get_only_their_own_work(client: Client) -> None:
    # Different handlers: a worker of one flow cannot run the other's agents. On one shared
    # queue (the default before), each got some of the other's events and dead-lettered them.
    first = flow(unique("tq-first"), "tests.agents:append")
    second = flow(unique("tq-second"), "tests.agents:async_append")
    runners = [Runner(first, client), Runner(second, client)]
    assert [r.task_queue for r in runners] == [first.task_queue, second.task_queue]
    async with serving(client, [(first, REPO)]), serving(client, [(second, REPO)]):
        handles = [await runner.emit({"n": n}, session_id="s") for n in range(3)
                   for runner in runners]  # fmt: skip
        outcomes = [await handle.outcome() for handle in handles]
        for config in (first, second):  # only the flow's own worker polls its queue
            assert await poller_flows(client, config.task_queue) == {frozenset({config.name})}
    assert [outcome.status for outcome in outcomes] == ["completed"] * 6
    for config in (first, second):
        assert [row async for row in list_letters(client, flow=config.name)] == []
        # Every workflow task and agent of the flow's session ran on a worker serving it.
        handle = client.get_workflow_handle(session_workflow_id(config.name, "s"))
        history = await handle.fetch_history()
        workers = {flows_of(e.workflow_task_completed_event_attributes.identity)
                   for e in history.events
                   if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED} | {
                   flows_of(e.activity_task_started_event_attributes.identity)
                   for e in history.events
                   if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED}  # fmt: skip
        assert workers == {frozenset({config.name})}


async def test_one_worker_of_several_flows_polls_each_flows_queue(client: Client) -> None:
    first = flow(unique("tq-both-a"), "tests.agents:append")
    second = flow(unique("tq-both-b"), "tests.agents:async_append")
    async with serving(client, [(first, REPO), (second, REPO)]) as worker:
        assert worker.task_queue == first.task_queue  # the first flow's
        runs = [Runner(config, client).run({"n": 1}) for config in (first, second)]
        assert [result.status for result in await asyncio.gather(*runs)] == ["completed"] * 2


async def test_a_worker_warns_when_workers_of_other_flows_poll_its_queue(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    queue = unique("tq-shared")
    first = flow(unique("tq-one"), "tests.agents:append", task_queue=queue)
    second = flow(unique("tq-two"), "tests.agents:async_append", task_queue=queue)
    # Another process's worth: one client runs one worker per task queue.
    other = await Client.connect(client.service_client.config.target_host,
                                 namespace=client.namespace,
                                 data_converter=client.data_converter)  # fmt: skip
    async with serving(client, [(first, REPO)]):
        await until(lambda: has_workers(client, queue))
        with caplog.at_level(logging.WARNING, logger="agentflow.worker"):
            async with serving(other, [(first, REPO)]):  # a replica of the same flow: fine
                assert "polled" not in caplog.text
            async with serving(other, [(second, REPO)]):
                pass
    [warning] = [r.getMessage() for r in caplog.records if "is also polled" in r.getMessage()]
    assert f"task queue {queue!r} is also polled" in warning
    assert first.name in warning and f"this worker serves {second.name}" in warning


async def test_a_worker_points_at_its_flows_runs_on_the_old_default_queue(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    config = flow(unique("tq-legacy"), "tests.agents:append")
    old = await Runner(config, client, LEGACY_TASK_QUEUE).start({})  # started before upgrading
    try:
        query = f"{visibility_query(flow=config.name, status='running')}"

        async def visible() -> bool:
            return (await client.count_workflows(query)).count == 1

        await until(visible)
        with caplog.at_level(logging.WARNING, logger="agentflow.worker"):
            async with serving(client, [(config, REPO)]):
                pass
        assert (
            f"1 open run(s) of flow {config.name!r} were started on task queue 'agentflow'"
            in caplog.text
        )
        assert "--task-queue agentflow" in caplog.text
    finally:
        await client.get_workflow_handle(old.workflow_id).terminate("test over")
