"""Temporal visibility for agentflow runs: search attributes, UI summaries, listing runs.

Every run carries the Keyword search attributes below, so the Temporal UI's filter box (and
``agentflow list``) can find "all runs of session X" or "all failed loop runs". ``agentflow dev``
registers them on its server; other clusters need them created once (see the error below).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime, timezone
from typing import Any, TypeVar

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from agentflow.errors import AgentflowError, ConfigError, NoWorkerError
from agentflow.models.flow import FlowProgress
from agentflow.names import (
    APPROVAL,
    DEAD_LETTER_WORKFLOW,
    FLOW,
    PROGRESS_QUERY,
    SEARCH_ATTRIBUTES,
    SESSION,
    SESSION_WORKFLOW,
)

# Set only while agents wait for approval: the names of those agents (workflows/_approval.py).

T = TypeVar("T")
log = logging.getLogger(__name__)

# What users type after --status, mapped to Temporal's ExecutionStatus names.
STATUSES = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "canceled": "Canceled",
    "terminated": "Terminated",
    "continued-as-new": "ContinuedAsNew",
    "timed-out": "TimedOut",
}

# What `agentflow session list --status` takes: a session that ended normally is "closed".
SESSION_STATUSES = {
    "running": "Running",
    "closed": "Completed",
    "terminated": "Terminated",
    "failed": "Failed",
    "canceled": "Canceled",
    "timed-out": "TimedOut",
}


async def require_search_attributes(client: Client) -> None:
    """Refuse to serve a namespace that lacks agentflow's search attributes.

    Why at worker start: a run that upserts a missing attribute (an approval that starts
    waiting) fails its workflow task, and Temporal retries that task for ever. A server that
    will not list its attributes (permissions) is left to the start-time check.
    """
    request = ListSearchAttributesRequest(namespace=client.namespace)
    try:
        listed = await client.operator_service.list_search_attributes(request)
    except RPCError as err:
        log.warning("cannot list the search attributes of %r: %s", client.namespace, err.message)
        return
    missing = {
        name: kind for name, kind in SEARCH_ATTRIBUTES.items()
        if name not in listed.custom_attributes
    }  # fmt: skip
    if missing:
        commands = _create_commands(client.namespace, missing)
        raise AgentflowError(
            f"namespace {client.namespace!r} lacks agentflow's search attributes "
            f"{', '.join(missing)}; create them once with: {commands}"
        )


def _create_commands(namespace: str, attributes: dict[str, str]) -> str:
    return "; ".join(
        f"temporal operator search-attribute create --namespace {namespace} "
        f"--name {name} --type {kind}"
        for name, kind in attributes.items()
    )


def missing_attribute_error(err: RPCError, namespace: str) -> AgentflowError | None:
    """Turn the server's "no mapping for search attribute" into the command that fixes it."""
    if err.status != RPCStatusCode.INVALID_ARGUMENT or "search attribute" not in err.message:
        return None
    return AgentflowError(
        f"namespace {namespace!r} lacks agentflow's search attributes ({err.message}); "
        f"create them once with: {_create_commands(namespace, SEARCH_ATTRIBUTES)}"
    )


def visibility_query(
    session: str | None = None, flow: str | None = None, status: str | None = None
) -> str:
    """A Temporal list filter; values are quoted so ids with spaces or quotes are safe."""
    clauses = [f"{FLOW.name} IS NOT NULL", *_filters(session, flow)]
    if status:
        clauses.append(_status_clause(status, STATUSES))
    return " AND ".join(clauses)


def session_query(flow: str | None = None, status: str | None = None) -> str:
    """Sessions, one row per session: runs that continued as new are left out (each such run
    is a chapter of the session, not a session of its own)."""
    clauses = [f"WorkflowType = {_quote(SESSION_WORKFLOW)}",
               f"ExecutionStatus != {_quote(STATUSES['continued-as-new'])}",
               *_filters(None, flow)]  # fmt: skip
    if status:
        clauses.append(_status_clause(status, SESSION_STATUSES))
    return " AND ".join(clauses)


def dead_letter_query(
    session: str | None = None, flow: str | None = None, open_only: bool = True
) -> str:
    """Dead letters; an open one is a running ``AgentflowDeadLetter`` workflow."""
    clauses = [f"WorkflowType = {_quote(DEAD_LETTER_WORKFLOW)}", *_filters(session, flow)]
    if open_only:
        clauses.append(f"ExecutionStatus = {_quote(STATUSES['running'])}")
    return " AND ".join(clauses)


def pending_query(session: str | None = None, flow: str | None = None) -> str:
    """Running workflows (runs and sessions) with an agent waiting for approval."""
    clauses = [f"{APPROVAL.name} IS NOT NULL", *_filters(session, flow),
               f"ExecutionStatus = {_quote(STATUSES['running'])}"]  # fmt: skip
    return " AND ".join(clauses)


def _filters(session: str | None, flow: str | None) -> list[str]:
    clauses = []
    if session:
        clauses.append(f"{SESSION.name} = {_quote(session)}")
    if flow:
        clauses.append(f"{FLOW.name} = {_quote(flow)}")
    return clauses


def _status_clause(status: str, allowed: dict[str, str]) -> str:
    if status not in allowed:
        raise ConfigError(f"--status: unknown {status!r}; allowed: {', '.join(allowed)}")
    return f"ExecutionStatus = {_quote(allowed[status])}"


def running_or_closed_since_query(closed_since: datetime | None, flow: str | None = None) -> str:
    """Running agentflow runs, plus (unless ``closed_since`` is None) those closed after it."""
    window = f"ExecutionStatus = {_quote(STATUSES['running'])}"
    if closed_since is not None:
        stamp = closed_since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        window = f"({window} OR CloseTime > {_quote(stamp)})"
    return f"{visibility_query(flow=flow)} AND {window}"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def list_runs(
    client: Client,
    session: str | None = None,
    flow: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> AsyncIterator[WorkflowExecution]:
    """agentflow runs, newest first, through Temporal visibility."""
    query = visibility_query(session, flow, status)
    async for execution in client.list_workflows(query, limit=limit):
        yield execution


def status_name(status: WorkflowExecutionStatus | None) -> str:
    return (status.name if status else "UNKNOWN").lower().replace("_", "-")


async def query_progress(handle: WorkflowHandle[Any, Any]) -> FlowProgress:
    """The run's ``progress`` query: agents done / running / failed (its worker must be up)."""
    progress: FlowProgress = await handle.query(PROGRESS_QUERY, result_type=FlowProgress)
    return progress


async def pollers(client: Client, task_queue: str) -> list[PollerInfo]:
    """The workers that polled ``task_queue`` for workflow tasks lately (Temporal keeps the
    last few minutes), with their identities."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return list(response.pollers)


async def has_workers(client: Client, task_queue: str) -> bool:
    """Whether a worker has polled ``task_queue`` lately. Queries and updates need one to
    answer; asking without one would only wait for Temporal's own timeout."""
    return bool(await pollers(client, task_queue))


async def require_workers(client: Client, task_queue: str, what: str) -> None:
    """One clear error, at once, when no worker is there to ``what`` (an update or a query)."""
    if not await has_workers(client, task_queue):
        raise NoWorkerError(
            f"no worker polls task queue {task_queue!r}, and one must run to {what} "
            "(agentflow worker --config ...)"
        )


async def worker_answer(call: Awaitable[T], task_queue: str, what: str, seconds: float) -> T:
    """``call`` (a query or an update), or one clear error if no worker answers in time: a
    worker that stopped a moment ago is still listed as polling for a few minutes."""
    try:
        return await asyncio.wait_for(call, seconds)
    # An update the timeout cancelled ends in the SDK's own error, not in TimeoutError.
    except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise NoWorkerError(
            f"no worker answered within {seconds:g}s to {what}; one must run on task queue "
            f"{task_queue!r} (agentflow worker --config ...)"
        ) from None
