"""The golden history of a flow with a nested flow (examples/nested): the parent starts the
child flow's workflow as a child workflow, which completes. Recorded by
``python -m tests.record_histories``; the child's own history is an ordinary mode workflow's."""

from __future__ import annotations

import uuid

from temporalio.client import Client, WorkflowHistory

from agentflow.client.runner import Runner
from agentflow.config import load_config
from agentflow.worker.serve import build_worker
from tests.conftest import REPO

NESTED_GOLDENS = ("nested",)
NESTED_EXAMPLE = REPO / "examples" / "nested" / "agentflow.toml"


async def record_nested_goldens(
    client: Client, prefix: str = "golden"
) -> dict[str, WorkflowHistory]:
    config = load_config(NESTED_EXAMPLE)
    queue = f"golden-nested-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, [(config, NESTED_EXAMPLE.parent)], task_queue=queue):
        handle = await Runner(config, client, queue).start(
            {"topic": "durable agent"}, workflow_id=f"{prefix}-nested"
        )
        await handle.result()
        return {"nested": await handle.handle.fetch_history()}
