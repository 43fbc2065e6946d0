"""What a run's helpers may use of the run, as protocols.

``FlowRun`` (workflows/_steps.py) is the one implementation: it builds the helpers (progress,
bus, approvals) and calls the others (invoke, batches, publishing, checkpoints) with itself.
Typing those helpers against the protocols here, not against ``FlowRun``, keeps the import graph
one-way: _steps imports the helpers, the helpers import this leaf module. mypy checks that
``FlowRun`` (and its Progress, Bus and Approvals) satisfy them wherever they are passed.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, NamedTuple, NoReturn, Protocol, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig
    from agentflow.models.approval import Approval, ApprovalAsk
    from agentflow.models.flow import (
        AgentHooks,
        AgentResult,
        FlowInput,
        FlowProgress,
        FlowResult,
        State,
    )
    from agentflow.models.usage import Usage
    from agentflow.workflows._stream import RunStream

T = TypeVar("T")


class Delivery(NamedTuple):
    """One event on its way to one subscriber (the bus, workflows/_bus.py)."""

    topic: str
    published_by: str  # the activity id of the publishing agent's call
    chain: tuple[str, ...]  # the agents that published along the way, first to last


class ProgressPort(Protocol):
    """The progress query and the UI's details (workflows/_progress.py)."""

    snapshot: FlowProgress

    def started(self, agent: str, activity_id: str | None = None) -> None: ...

    def ended(
        self, agent: str, succeeded: bool, *, activity_id: str | None = None,
        attempt: int | None = None, error: str | None = None,
    ) -> None: ...  # fmt: skip

    def note(self, kind: str, agent: str | None = None, **data: Any) -> None: ...


class BusPort(Protocol):
    """Publish and subscribe within a run (workflows/_bus.py)."""

    def published(
        self, result: AgentResult, activity_id: str, state: State, delivery: Delivery | None
    ) -> State: ...

    def delivery_metadata(self, delivery: Delivery) -> dict[str, str]: ...

    async def settle(self, body: Awaitable[T]) -> T: ...


class ApprovalsPort(Protocol):
    """Where agent calls wait for a person (workflows/_approval.py)."""

    async def before(self, agent: str) -> Approval | None: ...

    async def after(self, agent: str, output: State, result: AgentResult) -> AgentResult: ...

    async def asked(self, agent: str, ask: ApprovalAsk, previous: Approval | None) -> Approval: ...


class Run(Protocol):
    """One run of a flow, as its helpers see it."""

    input: FlowInput
    config: FlowConfig
    results: list[AgentResult]
    running: list[str]
    calls: int
    state: State
    activity_prefix: str
    round_trips: int
    unrecorded_local_ms: float
    resumed: bool
    usage: Usage
    agent_hooks: AgentHooks | None
    stream: RunStream | None

    @property
    def progress(self) -> ProgressPort: ...

    @property
    def bus(self) -> BusPort: ...

    @property
    def approvals(self) -> ApprovalsPort: ...

    async def invoke(
        self, agent: str, state: State, source: str, delivery: Delivery | None = None,
        approval: Approval | None = None,
    ) -> tuple[State, AgentResult]: ...  # fmt: skip

    def ended(self, agent: str, succeeded: bool, activity_id: str, **outcome: Any) -> None: ...

    def finish(self, state: State, **extra: Any) -> FlowResult: ...

    def fail(self, message: str, failed: AgentResult | None = None, **extra: Any) -> NoReturn: ...
