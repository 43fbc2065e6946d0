"""The golden history of a run with approvals: an agent approved before it runs (the Update),
a handler that asks and runs again once approved, and an "after" approval that times out into
on_timeout = "approve" (the timer). Recorded by ``python -m tests.record_histories approval``;
replayed by tests/test_approvals.py. Kept in tests/histories/approvals/."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowHistory

from agentflow.client.runner import Runner
from agentflow.config import FlowConfig
from agentflow.models.approval import Approval, ApprovalDecision
from agentflow.names import APPROVALS_QUERY, DECIDE_UPDATE
from tests.conftest import flow_config, running_worker

APPROVAL_GOLDENS = ("approval",)
HISTORIES = Path(__file__).parent / "histories" / "approvals"


def golden_approval_config() -> FlowConfig:
    return flow_config(
        "sequential",
        {
            "gate": {"handler": "tests.agents:append", "approval": "before"},
            "ask": "tests.approval_agents:ask",
            "review": {
                "handler": "tests.agents:append",
                "approval": "after",
                "approval_timeout_seconds": 1,
                "on_timeout": "approve",
            },
        },
        sequential_agents=["gate", "ask", "review"],
    )


async def record_approval_goldens(client: Client) -> dict[str, WorkflowHistory]:
    config = golden_approval_config()
    async with running_worker(client, config) as queue:
        run = await Runner(config, client, queue).start({}, workflow_id="golden-approval")
        for agent in ("gate", "ask"):
            await waiting_for(run.handle, agent)
            decision = ApprovalDecision(approve=True, agent=agent, by="golden", comment="ok")
            await run.handle.execute_update(DECIDE_UPDATE, decision, result_type=Approval)
        await run.result()
        return {"approvals/approval": await run.handle.fetch_history()}


async def waiting_for(handle: WorkflowHandle[Any, Any], agent: str) -> Approval:
    """The approval ``agent`` waits for (the run's ``approvals`` query), once it waits."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found: list[Approval] = await handle.query(APPROVALS_QUERY, result_type=list[Approval])
        for approval in found:
            if approval.agent == agent:
                return approval
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{agent} never waited for approval in {handle.id}")
