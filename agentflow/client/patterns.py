"""``[patterns.NAME]`` from a client: the pattern workflows running now and their open windows
(``agentflow patterns``). Each running pattern workflow (one per flow, pattern and key) is
found by its workflow type through visibility, then asked for its windows by a query."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from agentflow.models.pattern import PatternView
from agentflow.names import PATTERN_QUERY, PATTERN_WORKFLOW

log = logging.getLogger("agentflow.patterns")

# A live worker answers a query in milliseconds; longer means none is answering.
QUERY_SECONDS = 5.0
# Queries in flight at once.
QUERIES = 32


def running_patterns_query() -> str:
    """The visibility query of every running pattern workflow."""
    return f"WorkflowType = '{PATTERN_WORKFLOW}' AND ExecutionStatus = 'Running'"


async def open_windows(client: Client, flow: str | None = None) -> list[PatternView]:
    """Every running pattern workflow (of ``flow``, else of any flow) with its open windows,
    sorted by flow, pattern and key. One whose query gets no answer (no bus worker running)
    is left out, with a warning in the log."""
    ids = [
        execution.id
        async for execution in client.list_workflows(running_patterns_query())
    ]  # fmt: skip
    limit = asyncio.Semaphore(QUERIES)

    async def one(workflow_id: str) -> PatternView | None:
        handle = client.get_workflow_handle(workflow_id)
        async with limit:
            try:
                return await asyncio.wait_for(
                    handle.query(PATTERN_QUERY, result_type=PatternView), QUERY_SECONDS
                )
            except (RPCError, asyncio.TimeoutError, WorkflowQueryFailedError) as err:
                log.warning("pattern workflow %s did not answer its query: %s", workflow_id, err)
                return None

    views = [view for view in await asyncio.gather(*map(one, ids)) if view is not None]
    views = [view for view in views if flow is None or view.flow == flow]
    return sorted(views, key=lambda view: (view.flow, view.name, view.key))
