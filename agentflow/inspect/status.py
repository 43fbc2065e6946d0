"""A run's status: what Temporal says of it, and its live progress when a worker answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from agentflow.client import visibility
from agentflow.models.flow import FlowProgress

__all__ = ["RunStatus", "progress_of", "run_status"]


class RunStatus(BaseModel):
    """``agentflow status --json`` and ``GET /runs/{run}``: the latest run of the workflow."""

    workflow_id: str
    run_id: str
    status: str  # running, completed, failed, ... (visibility.status_name)
    workflow_type: str
    task_queue: str
    start_time: datetime
    close_time: datetime | None = None
    progress: FlowProgress | None = None  # None: no worker answered, or not a flow run

    @property
    def running(self) -> bool:
        return self.status == visibility.status_name(WorkflowExecutionStatus.RUNNING)


async def progress_of(handle: WorkflowHandle[Any, Any]) -> FlowProgress | None:
    """The run's ``progress`` query, or None when nothing answers it."""
    try:
        return await visibility.query_progress(handle)
    except Exception:  # no worker to answer, or a run from before the query existed
        return None


async def run_status(client: Client, workflow_id: str) -> RunStatus:
    """The latest run of ``workflow_id`` (a continue-as-new chain's last): RPCError NOT_FOUND
    when Temporal holds no such workflow."""
    handle = client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    return RunStatus(
        workflow_id=workflow_id, run_id=description.run_id,
        status=visibility.status_name(description.status),
        workflow_type=description.workflow_type, task_queue=description.task_queue,
        start_time=description.start_time, close_time=description.close_time,
        progress=await progress_of(handle),
    )  # fmt: skip
