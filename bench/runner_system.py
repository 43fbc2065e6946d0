"""agentflow's one-process runner as a system under test: ``agentflow.Runner`` with its agents
registered in code and served by ``async with runner:``, beside the CLI worker's path
(``AgentflowSystem``: handlers named in TOML, ``build_worker``). W1 and W6 run on both."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from temporalio.client import Client

import agentflow
from agentflow.client.sessions import EmitHandle
from agentflow.config import parse_config
from bench.agents import HANDLERS

VARIANTS = ("noop", "sleep")


class RunnerSystem:
    """One ``agentflow.Runner`` per flow (5 sequential agents, no-op or 10 ms sleep), each
    with its own worker in this process; ``local`` runs every agent as a local activity."""

    def __init__(self, client: Client, agents: int = 5, local: bool = False) -> None:
        self.name = "runner-local" if local else "runner"
        self.runners: dict[str, agentflow.Runner] = {}
        names = [f"a{index}" for index in range(agents)]
        for variant in VARIANTS:
            # W1's flow with no [agents] table: the runner registers its agents in code.
            raw = {
                "agent_flow": {"name": f"bench-runner-{variant}{'-local' if local else ''}"},
                "orchestration": {"mode": "sequential", "sequential_agents": names,
                                  "timeout_seconds": 3600, "local_agents": local},
            }  # fmt: skip
            queue = f"bench-{self.name}-{uuid.uuid4().hex[:6]}"
            runner = agentflow.Runner(parse_config(raw), client, queue)
            for name in names:
                runner.register_agent(name, HANDLERS[variant])
            self.runners[variant] = runner

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for runner in self.runners.values():
                await stack.enter_async_context(runner)
            yield

    async def sequential(self, agents: int, variant: str, state: dict[str, Any]) -> Any:
        return await self.runners[variant].run(state)

    async def emit(self, agents: int, session_id: str, wait: bool) -> EmitHandle:
        return await self.runners["noop"].emit({}, session_id=session_id, wait=wait)
