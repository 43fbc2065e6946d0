"""Which task queues a worker polls, and whether workers of other flows poll them too.

A flow's runs go to its own task queue, ``agentflow:NAME``, unless its ``[temporal]
task_queue`` names one (``FlowConfig.task_queue``). A worker serving several flow files polls
each flow's queue (files that name the same queue share one); ``--task-queue Q`` puts them all
on Q. So the work of one flow reaches only workers that have its handlers.

Two flows can still be put on one queue by hand. A worker names the flows it serves in its
Temporal identity (``PID@HOST agentflow-flows=["a", "b"]``), and at start reads who polls its
queues (Temporal lists the pollers of the last few minutes, with their identities): workers
that serve other flows there get a warning in the log, since each may take the other's work
and fail it for want of a handler. Pollers that do not name their flows (agentflow before
this, or other programs) cannot be told apart, and are only counted at INFO.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

from agentflow.client.visibility import pollers, visibility_query
from agentflow.config import FlowConfig
from agentflow.limits import MAX_ID_BYTES
from agentflow.names import LEGACY_TASK_QUEUE

log = logging.getLogger("agentflow.worker")

FLOWS_MARK = " agentflow-flows="

Pair = tuple[FlowConfig, Path | None]


def queue_groups(configs: Sequence[Pair], task_queue: str | None = None) -> dict[str, list[Pair]]:
    """The flows each task queue serves: all on ``task_queue`` when given, else each flow
    on its own (``FlowConfig.task_queue``), in order of first mention."""
    if task_queue:
        return {task_queue: list(configs)}
    groups: dict[str, list[Pair]] = {}
    for pair in configs:
        groups.setdefault(pair[0].task_queue, []).append(pair)
    return groups


def worker_identity(base: str, flows: Iterable[str]) -> str:
    """``base`` (the client's ``PID@HOST``) naming ``flows``; just ``base`` when that would be
    longer than Temporal takes."""
    identity = f"{base}{FLOWS_MARK}{json.dumps(sorted(set(flows)), ensure_ascii=False)}"
    return identity if len(identity.encode()) <= MAX_ID_BYTES else base


def flows_of(identity: str) -> frozenset[str] | None:
    """The flows a worker's identity names; None when it names none."""
    _, mark, listed = identity.partition(FLOWS_MARK)
    if not mark:
        return None
    try:
        flows = json.loads(listed)
    except ValueError:
        return None
    if not isinstance(flows, list) or not all(isinstance(flow, str) for flow in flows):
        return None
    return frozenset(flows)


async def warn_of_other_flows(client: Client, task_queue: str, flows: Iterable[str]) -> None:
    """Log a warning when workers of other flows poll ``task_queue`` (best effort: a failed
    look is logged at INFO, not raised)."""
    ours = frozenset(flows)
    try:
        polled = await pollers(client, task_queue)
    except RPCError as err:
        log.info("could not list the workers of task queue %r: %s", task_queue, err.message)
        return
    others: dict[str, list[str]] = {}  # identity -> the flows it serves that we do not
    unnamed = 0
    for poller in polled:
        theirs = flows_of(poller.identity)
        if theirs is None:
            unnamed += 1
        elif theirs != ours:
            others[poller.identity] = sorted(theirs)
    if others:
        listed = "; ".join(f"{who}: {', '.join(names)}" for who, names in sorted(others.items()))
        log.warning(
            "task queue %r is also polled (in the last few minutes) by workers of other flows "
            "(%s); this worker serves %s. Each may take the other's runs and fail them for "
            "want of a handler: give each flow its own queue (leave [temporal] task_queue "
            "unset) or serve the same flows from every worker of the queue",
            task_queue, listed, ", ".join(sorted(ours)),
        )  # fmt: skip
    if unnamed:
        log.info(
            "task queue %r is also polled by %d worker(s) that do not say which flows they "
            "serve (agentflow before per-flow queues, or other programs)",
            task_queue, unnamed,
        )  # fmt: skip


async def warn_of_legacy_runs(client: Client, flows: Iterable[str]) -> None:
    """Log a warning for runs of ``flows`` still open on the task queue every flow used by
    default before each had its own: no worker of the flow's own queue takes them."""
    for flow in flows:
        legacy = f"TaskQueue = '{LEGACY_TASK_QUEUE}'"
        query = f"{visibility_query(flow=flow, status='running')} AND {legacy}"
        try:
            count = (await client.count_workflows(query)).count
        except RPCError as err:
            log.info("could not count the runs of %r on task queue %r: %s", flow,
                     LEGACY_TASK_QUEUE, err.message)  # fmt: skip
            return
        if count:
            log.warning(
                "%d open run(s) of flow %r were started on task queue %r, the default before "
                "each flow had its own; they wait for a worker there: run `agentflow worker "
                "--config FILE --task-queue %s` beside this one until they end",
                count, flow, LEGACY_TASK_QUEUE, LEGACY_TASK_QUEUE,
            )  # fmt: skip
