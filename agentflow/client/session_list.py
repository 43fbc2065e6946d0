"""Listing sessions from visibility: one row per session, its latest start only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError

from agentflow import names
from agentflow.client import visibility

__all__ = ["list_sessions"]


async def list_sessions(client: Client, query: str, limit: int) -> AsyncIterator[dict[str, Any]]:
    """One row per session (``query``: ``visibility.session_query``), newest first. A closed
    session reopened by a later emit has two rows in visibility (one per start); only its
    latest is shown."""
    seen: set[str] = set()
    try:
        async for execution in client.list_workflows(query):
            if execution.id in seen or not await _latest(client, execution):
                continue
            seen.add(execution.id)
            yield _session_row(execution)
            if len(seen) >= limit:
                return
    except RPCError as err:
        raise visibility.missing_attribute_error(err, client.namespace) or err from None


async def _latest(client: Client, execution: WorkflowExecution) -> bool:
    if execution.status == WorkflowExecutionStatus.RUNNING:
        return True  # a running session is always the latest start of its id
    description = await client.get_workflow_handle(execution.id).describe()
    return description.run_id == execution.run_id


def _session_row(execution: WorkflowExecution) -> dict[str, Any]:
    attrs = execution.typed_search_attributes
    status = visibility.status_name(execution.status)
    return {
        "session": attrs.get(names.SESSION),
        "flow": attrs.get(names.FLOW),
        "status": "closed" if status == "completed" else status,
        "workflow_id": execution.id,
        "run_id": execution.run_id,
        "start_time": execution.start_time.isoformat(),
        "close_time": execution.close_time.isoformat() if execution.close_time else None,
    }
