"""The systems under test, each able to run the benchmark workloads.

``AgentflowSystem`` goes through the public API (Runner + build_worker); ``RawSystem`` is the
hand-written Temporal floor; ``AsyncioSystem`` calls the same handlers with no durability.
All share one client, one dev server and one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from agentflow.client.runner import Runner
from agentflow.client.sessions import EmitHandle
from agentflow.config import FlowConfig, parse_config
from agentflow.inspect.trace.read import run_histories
from agentflow.models.flow import Event, State
from agentflow.worker.serve import build_worker
from bench.agents import HANDLERS, SLEEP_SECONDS
from bench.raw import RAW_WORKFLOWS, RawFanOut, RawInput, RawLoop, RawSequential, raw_step
from bench.raw_session import RawEvent, RawSession

REPO = Path(__file__).resolve().parent.parent


class System(Protocol):
    name: str

    async def sequential(self, agents: int, variant: str, state: dict[str, Any]) -> Any: ...
    async def fan_out(self, agents: int, variant: str) -> Any: ...
    async def loop(self, iterations: int, variant: str) -> Any: ...


class Emitted(Protocol):
    async def result(self) -> Any: ...


class SessionSystem(Protocol):
    """A system with sessions (W6): emits an event of an ``agents``-agent sequential flow."""

    name: str

    async def emit(self, agents: int, session_id: str, wait: bool) -> Emitted: ...


def flow_config(mode: str, agents: int, variant: str, local: bool = False) -> FlowConfig:
    """A validated agentflow config of ``agents`` agents running the ``variant`` handler."""
    names = [f"a{index}" for index in range(agents)]
    handler = f"bench.agents:{'sleep10' if variant == 'sleep' else variant}"
    orch: dict[str, Any] = {"mode": mode, "timeout_seconds": 3600, "local_agents": local}
    if mode == "sequential":
        orch["sequential_agents"] = names
    elif mode == "collaborative":
        orch |= {"collaborative_agents": names, "max_concurrency": 100}
    else:
        orch |= {"loop_agent": names[0], "max_iterations": agents}
        names = names[:1]
    raw = {
        "agent_flow": {"name": f"bench-{mode}-{agents}-{variant}{'-local' if local else ''}"},
        "orchestration": orch,
        "agents": {name: {"handler": handler} for name in names},
    }
    return parse_config(raw, base_dir=REPO, check_handlers=True)


class AgentflowSystem:
    """agentflow through its public API; ``local`` runs every agent as a local activity."""

    def __init__(
        self, client: Client, local: bool = False, eager_start: bool = False, **worker_options: Any
    ) -> None:
        self.name = "agentflow-local" if local else "agentflow"
        self.client, self.local, self.worker_options = client, local, worker_options
        self.eager_start = eager_start
        self.task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.runners: dict[tuple[str, int, str], Runner] = {}

    def runner(self, mode: str, agents: int, variant: str) -> Runner:
        key = (mode, agents, variant)
        if key not in self.runners:
            config = flow_config(mode, agents, variant, self.local)
            self.runners[key] = Runner(
                config, self.client, self.task_queue, eager_start=self.eager_start
            )
        return self.runners[key]

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        configs = [(flow_config("sequential", 1, v), REPO) for v in ("noop", "sleep", "inflate")]
        worker = build_worker(self.client, configs, task_queue=self.task_queue,
                              **self.worker_options)  # fmt: skip
        async with worker:
            yield

    async def start_sequential(
        self, agents: int, variant: str, state: dict[str, Any]
    ) -> WorkflowHandle[Any, Any]:
        handle = await self.runner("sequential", agents, variant).start(state)
        return handle.handle

    async def sequential(self, agents: int, variant: str, state: dict[str, Any]) -> Any:
        kind = "inflate" if "inflate_bytes" in state else variant
        return await self.runner("sequential", agents, kind).run(state)

    async def emit(self, agents: int, session_id: str, wait: bool) -> EmitHandle:
        """An event of the ``agents``-agent sequential no-op flow into session ``session_id``."""
        return await self.runner("sequential", agents, "noop").emit({}, session_id=session_id,
                                                                    wait=wait)  # fmt: skip

    async def fan_out(self, agents: int, variant: str) -> WorkflowHandle[Any, Any]:
        handle = await self.runner("collaborative", agents, variant).start({})
        await handle.result()
        return handle.handle

    async def loop(self, iterations: int, variant: str) -> WorkflowHandle[Any, Any]:
        handle = await self.runner("loop", iterations, variant).start({})
        await handle.result()
        return handle.handle


class RawSystem:
    """Hand-written temporalio workflows and activity: the floor on Temporal.

    ``local`` runs every step as a local activity: the floor for agentflow's ``local = true``.
    """

    def __init__(self, client: Client, local: bool = False, **worker_options: Any) -> None:
        self.name = "raw-local" if local else "raw"
        self.client, self.local, self.worker_options = client, local, worker_options
        self.task_queue = f"bench-{self.name}-{uuid.uuid4().hex[:8]}"

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        worker = Worker(self.client, task_queue=self.task_queue,
                        workflows=[*RAW_WORKFLOWS, RawSession],
                        activities=[raw_step], **self.worker_options)  # fmt: skip
        async with worker:
            yield

    async def _start(self, workflow: Any, inp: RawInput) -> WorkflowHandle[Any, Any]:
        return await self.client.start_workflow(
            workflow.run, inp, id=f"raw-{uuid.uuid4().hex}", task_queue=self.task_queue
        )

    async def start_sequential(
        self, agents: int, variant: str, state: dict[str, Any]
    ) -> WorkflowHandle[Any, Any]:
        inp = RawInput(agents, state, _sleep(variant), local=self.local)
        return await self._start(RawSequential, inp)

    async def sequential(self, agents: int, variant: str, state: dict[str, Any]) -> Any:
        return await (await self.start_sequential(agents, variant, state)).result()

    async def emit(self, agents: int, session_id: str, wait: bool) -> RawEmitted:
        """An event into a hand-written session: update-with-start when ``wait``, else
        signal-with-start (the result is then asked for with an update)."""
        event = RawEvent(uuid.uuid4().hex, RawInput(agents, local=self.local))
        workflow_id = f"raw-session-{self.name}-{session_id}"
        if wait:
            start = WithStartWorkflowOperation(
                RawSession.run, id=workflow_id, task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )  # fmt: skip
            result: dict[str, Any] = await self.client.execute_update_with_start_workflow(
                "emit_and_wait", event, start_workflow_operation=start, result_type=dict
            )
            return RawEmitted(event.id, None, result)
        handle = await self.client.start_workflow(
            RawSession.run, id=workflow_id, task_queue=self.task_queue,
            start_signal="emit", start_signal_args=[event],
        )  # fmt: skip
        return RawEmitted(event.id, handle, None)

    async def fan_out(self, agents: int, variant: str) -> WorkflowHandle[Any, Any]:
        inp = RawInput(agents, sleep=_sleep(variant), local=self.local)
        handle = await self._start(RawFanOut, inp)
        await handle.result()
        return handle

    async def loop(self, iterations: int, variant: str) -> WorkflowHandle[Any, Any]:
        inp = RawInput(iterations, sleep=_sleep(variant), local=self.local)
        handle = await self._start(RawLoop, inp)
        await handle.result()
        return handle


@dataclass
class RawEmitted:
    """A raw session event: its result at once (update-with-start) or through its handle."""

    event_id: str
    handle: WorkflowHandle[Any, Any] | None
    outcome: dict[str, Any] | None

    async def result(self) -> dict[str, Any]:
        if self.handle is None:
            return self.outcome or {}
        result: dict[str, Any] = await self.handle.execute_update(
            "result", self.event_id, result_type=dict
        )
        return result


class AsyncioSystem:
    """The same handlers called directly: the floor without Temporal (no durability)."""

    name = "asyncio"

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        yield

    async def sequential(self, agents: int, variant: str, state: dict[str, Any]) -> State:
        current = State(data=dict(state))
        for index in range(agents):
            await self._call(f"a{index}", variant, current)
        return current

    async def start_sequential(self, agents: int, variant: str, state: dict[str, Any]) -> Any:
        return asyncio.ensure_future(self.sequential(agents, variant, state))

    async def fan_out(self, agents: int, variant: str) -> None:
        gate = asyncio.Semaphore(100)
        base = State()

        async def one(index: int) -> None:
            async with gate:
                await self._call(f"a{index}", variant, base.clone())

        await asyncio.gather(*(one(index) for index in range(agents)))

    async def loop(self, iterations: int, variant: str) -> None:
        state = State()
        for _ in range(iterations):
            await self._call("a0", variant, state)

    @staticmethod
    async def _call(agent: str, variant: str, state: State) -> None:
        kind = "inflate" if "inflate_bytes" in state.data else variant
        state.data.update(await HANDLERS[kind](Event(target_agent=agent), state))


def _sleep(variant: str) -> float:
    return SLEEP_SECONDS if variant == "sleep" else 0.0


async def history_sizes(client: Client, handle: WorkflowHandle[Any, Any]) -> list[int]:
    """Events in each run of a workflow, following its continue-as-new chain."""
    first = handle.first_execution_run_id or handle.result_run_id
    return [len(events) async for _, events in run_histories(client, handle.id, first)]


def elapsed(since: float) -> float:
    return time.perf_counter() - since
