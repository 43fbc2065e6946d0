"""Golden histories of agent activity types (agentflow/activity_types.py), kept apart from the
mode goldens in tests/histories/agent_types/ so re-recording those never loses either form:

- ``before_patch``: a copy of a run recorded before the ``agent-activity-type`` patch (every
  agent a ``run_agent`` activity); never re-recorded.
- ``after_patch``: a mixed run since the patch: a regular agent and a local agent in parallel,
  then an agent that fails (``agent:a``, ``agent:b`` as a local activity, ``agent:c``).
  Recorded by ``python -m tests.record_histories after_patch``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from temporalio.client import Client, WorkflowHistory

from agentflow.client.runner import Runner
from agentflow.config import FlowConfig
from agentflow.models.flow import FlowFailedError
from tests.conftest import flow_config, running_worker

AGENT_TYPE_HISTORIES = Path(__file__).parent / "histories" / "agent_types"
AGENT_TYPE_GOLDENS = ("after_patch",)  # the ones record_histories writes


def named_agents_config() -> FlowConfig:
    agents = {
        "a": "tests.agents:append",
        "b": {"handler": "tests.agents:append", "local": True},
        "c": "tests.agents:fatal",
    }
    return flow_config("mixed", agents, collaborative_agents=["a", "b"], sequential_agents=["c"])


async def record_agent_type_goldens(client: Client) -> dict[str, WorkflowHistory]:
    config = named_agents_config()
    async with running_worker(client, config) as queue:
        handle = await Runner(config, client, queue).start({}, workflow_id="golden-after_patch")
        with contextlib.suppress(FlowFailedError):
            await handle.result()
        # The key is the file's path under tests/histories/.
        return {"agent_types/after_patch": await handle.handle.fetch_history()}
