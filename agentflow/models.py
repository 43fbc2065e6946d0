"""The data that travels through a flow: events, state, and the results of agents and flows.

Every model here is carried in Temporal payloads by the pydantic data converter, so new fields
must be optional with defaults: running flows were started with the old shape.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentflow.config import AgentConfig, FlowConfig, LLMConfig

Mode = Literal["route", "sequential", "collaborative", "loop", "mixed"]
RunStatus = Literal["completed", "failed"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Event(BaseModel):
    """What starts a flow: the seeds' Event (target, source, session, data, metadata)."""

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: datetime = Field(default_factory=_now)
    source_agent: str = ""
    target_agent: str = ""
    session_id: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)


class State(BaseModel):
    """What agents pass on: ``data`` for payload, ``meta`` for routing strings.

    ``meta["route"]`` hands off to another agent (route mode); ``data["loop_complete"] = True``
    ends a loop; ``meta["publish"] = "topic,…"`` delivers the state to the topics' subscribers.
    """

    data: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, str] = Field(default_factory=dict)

    def clone(self) -> State:
        return self.model_copy(deep=True)


class AgentResult(BaseModel):
    """One agent invocation as the flow saw it (after Temporal's retries)."""

    agent: str
    status: RunStatus
    attempt: int = 1
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: float = 0.0
    error: str | None = None
    changed_keys: list[str] = Field(default_factory=list)
    # Set on a subscriber's result: the topic it reacted to (its output is not merged).
    topic: str | None = None


class FlowInput(BaseModel):
    """Input of every mode workflow: the config the run is pinned to, the event, the state."""

    config: FlowConfig
    event: Event
    state: State
    loop: LoopProgress | None = None


class LoopProgress(BaseModel):
    """What a loop carries across continue-as-new: iterations done and recent results."""

    iterations: int = 0
    recent_results: list[AgentResult] = Field(default_factory=list)
    runs: int = 1


class FlowResult(BaseModel):
    """What a flow run returns: final state, the agent results in order, and how it ended."""

    flow: str
    mode: Mode
    status: RunStatus = "completed"
    state: State = Field(default_factory=State)
    results: list[AgentResult] = Field(default_factory=list)
    error: str | None = None
    iterations: int | None = None
    stop_reason: str | None = None
    path: list[str] = Field(default_factory=list)


class AgentInput(BaseModel):
    """Input of the ``run_agent`` activity: which agent, with what event and state."""

    agent: str
    spec: AgentConfig
    event: Event
    state: State
    flow: str = ""
    llm: LLMConfig | None = None
    # A subscriber delivery: the topic, and the activity id of the publishing agent's call.
    topic: str | None = None
    published_by: str | None = None


class FlowProgress(BaseModel):
    """What the ``progress`` query returns while a run is going (and after it ended).

    ``total`` is the number of agent steps the mode plans (``None`` for route mode, whose
    path is decided by the agents); counts cover every run of a continued-as-new chain.
    """

    flow: str
    mode: Mode
    total: int | None = None
    completed: int = 0
    failed: int = 0
    running: list[str] = Field(default_factory=list)
    step: int = 0
    last_agent: str = ""


class AgentOutput(BaseModel):
    """Output of the ``run_agent`` activity."""

    state: State
    started_at: datetime
    ended_at: datetime
    attempt: int = 1


FlowInput.model_rebuild()
