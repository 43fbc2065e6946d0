"""``python -m bench.priority``: does Temporal task priority reorder a backlogged task queue?

Each variant gets its own dev server. On it, a backlog is built while nothing polls: one
workflow schedules ``--tasks`` activities, alternating low (priority key 4) and critical (key 1),
so FIFO would give both the same mean position; and ``--workflows`` workflows are started with
the same alternating workflow-level priority. Then one worker with a single slot drains each
queue, and the order in which it receives the tasks is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import Priority
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from agentflow.worker.devserver_process import dev_server_args, temporal_binary

CRITICAL, LOW = 1, 4
TIMEOUT = timedelta(minutes=5)
PER_WORKFLOW = 1000  # the server refuses more than 2,000 pending activities per workflow
# The workflows below are trivial and live in __main__, which the sandbox cannot re-import.
RUNNER = UnsandboxedWorkflowRunner()
# DescribeTaskQueue caches partition stats for 5 s; a short TTL lets the backlog wait end early.
MEASURING: dict[str, object] = {"matching.TaskQueueInfoByBuildIdTTL": "100ms"}

# Dynamic config laid over agentflow's DYNAMIC_CONFIG, which has one partition per task queue
# (later flags win). The new matcher is on by default since server 1.31; fairness is off.
VARIANTS: dict[str, dict[str, object]] = {
    "agentflow (1 partition)": {},
    "4 partitions (server default)": {
        "matching.numTaskqueueReadPartitions": 4,
        "matching.numTaskqueueWritePartitions": 4,
    },
    "1 partition, old matcher": {"matching.useNewMatcher": False},
    "1 partition, fairness": {"matching.enableFairness": True},
}


class Recorder:
    """The activity worker's side: the priority keys in the order the tasks arrive."""

    def __init__(self) -> None:
        self.keys: list[int] = []

    @activity.defn(name="record")
    async def record(self, index: int) -> int:
        self.keys.append(activity.info().priority.priority_key or 0)
        return index


@workflow.defn
class Backlog:
    """Schedules one activity per key, all in its first workflow task."""

    @workflow.run
    async def run(self, keys: list[int], task_queue: str) -> None:
        await asyncio.gather(*(
            workflow.execute_activity(
                "record", index, task_queue=task_queue, start_to_close_timeout=TIMEOUT,
                priority=Priority(priority_key=key),
            )
            for index, key in enumerate(keys)
        ))  # fmt: skip


@workflow.defn
class Probe:
    """Returns its priority key and when its first workflow task started (server time)."""

    @workflow.run
    async def run(self) -> tuple[int, float]:
        return workflow.info().priority.priority_key or 0, workflow.now().timestamp()


@dataclass
class Outcome:
    queue: str
    keys: list[int]  # priority keys in dispatch order
    backlog_seconds: float
    drain_seconds: float

    def row(self, variant: str) -> str:
        def positions(key: int) -> list[int]:
            return [i for i, k in enumerate(self.keys) if k == key]

        critical, low = positions(CRITICAL), positions(LOW)
        first_low = low[0] if low else len(self.keys)
        before = sum(1 for i in critical if i < first_low) / len(critical)
        cells = [
            variant, self.queue, str(len(self.keys)),
            f"{statistics.mean(critical):.1f}", f"{statistics.median(critical):g}",
            f"{statistics.mean(low):.1f}", f"{statistics.median(low):g}",
            f"{before:.0%}", f"{self.backlog_seconds:.1f}", f"{self.drain_seconds:.1f}",
        ]  # fmt: skip
        return "| " + " | ".join(cells) + " |"


HEADER = (
    "| variant | queue | tasks | critical mean pos | critical median | low mean pos "
    "| low median | critical before first low | backlog s | drain s |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def alternating(count: int) -> list[int]:
    return [LOW if i % 2 == 0 else CRITICAL for i in range(count)]


async def backlog_size(client: Client, task_queue: str, kind: TaskQueueType.ValueType) -> int:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=kind,
            report_stats=True,
        )
    )
    return response.stats.approximate_backlog_count


async def await_backlog(
    client: Client, task_queue: str, kind: TaskQueueType.ValueType, size: int
) -> None:
    deadline = time.monotonic() + 120
    while await backlog_size(client, task_queue, kind) < size:
        if time.monotonic() > deadline:
            raise TimeoutError(f"backlog of {task_queue} did not reach {size}")
        await asyncio.sleep(0.1)  # polling a server-side count: nothing to await


async def activity_backlog(client: Client, tasks: int) -> Outcome:
    suffix = uuid.uuid4().hex[:8]
    workflows, activities = f"backlog-{suffix}", f"activities-{suffix}"
    recorder = Recorder()
    started = time.monotonic()
    # Different task queues: the workflow worker runs throughout, no activity worker polls yet
    # (and no eager activity dispatch, which needs the same task queue).
    async with Worker(
        client, task_queue=workflows, workflows=[Backlog],
        workflow_runner=RUNNER,
    ):  # fmt: skip
        keys = alternating(tasks)
        handles = [
            await client.start_workflow(
                Backlog.run, args=[keys[first : first + PER_WORKFLOW], activities],
                id=f"{workflows}-{first}", task_queue=workflows,
            )
            for first in range(0, tasks, PER_WORKFLOW)
        ]  # fmt: skip
        await await_backlog(client, activities, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, tasks)
        built = time.monotonic()
        async with Worker(
            client, task_queue=activities, activities=[recorder.record],
            max_concurrent_activities=1,
        ):  # fmt: skip
            for handle in handles:
                await handle.result()
    return Outcome("activity", recorder.keys, built - started, time.monotonic() - built)


async def workflow_backlog(client: Client, count: int) -> Outcome:
    task_queue = f"probes-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    handles = [
        await client.start_workflow(
            Probe.run, id=f"{task_queue}-{index}", task_queue=task_queue,
            priority=Priority(priority_key=key),
        )
        for index, key in enumerate(alternating(count))
    ]  # fmt: skip
    await await_backlog(client, task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, count)
    built = time.monotonic()
    # One slot and no cache (so no sticky queue): workflow tasks are taken one at a time.
    async with Worker(
        client, task_queue=task_queue, workflows=[Probe], max_concurrent_workflow_tasks=1,
        max_cached_workflows=0, workflow_runner=RUNNER,
    ):  # fmt: skip
        results = [await handle.result() for handle in handles]
    drained = time.monotonic() - built
    keys = [key for key, _ in sorted(results, key=lambda result: result[1])]
    return Outcome("workflow", keys, built - started, drained)


async def run_variant(extra: dict[str, object], tasks: int, workflows: int) -> list[Outcome]:
    args = dev_server_args()
    for key, value in {**MEASURING, **extra}.items():
        args += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=args,
        data_converter=pydantic_data_converter,
    )
    try:
        return [
            await activity_backlog(env.client, tasks),
            await workflow_backlog(env.client, workflows),
        ]
    finally:
        await env.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.priority", description=__doc__)
    parser.add_argument("--tasks", type=int, default=200, help="activities in the backlog")
    parser.add_argument("--workflows", type=int, default=100, help="workflows in the backlog")
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS),
                        help="run only these (repeatable); default: all")  # fmt: skip
    args = parser.parse_args(argv)
    print(HEADER)
    for name in args.variant or list(VARIANTS):
        started = time.monotonic()
        outcomes = asyncio.run(run_variant(VARIANTS[name], args.tasks, args.workflows))
        for outcome in outcomes:
            print(outcome.row(name), flush=True)
        print(f"{name}: {time.monotonic() - started:.1f} s with server start", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
