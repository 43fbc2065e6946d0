"""The data that travels through a flow: events, state, and the results of agents and flows.

Every model here is carried in Temporal payloads by the pydantic data converter, so new fields
must be optional with defaults: running flows were started with the old shape.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.contrib.workflow_streams import WorkflowStreamState

from agentflow.config import AgentConfig, FlowConfig, LLMConfig
from agentflow.config.llm import ResolvedLLM
from agentflow.config.mcp import MCPConfig
from agentflow.errors import AgentflowError
from agentflow.models.approval import Approval, ApprovalAsk
from agentflow.models.llm import LLMTurn
from agentflow.models.recall import Recalled
from agentflow.models.stream import StreamItem
from agentflow.models.usage import Usage

Mode = Literal["route", "sequential", "collaborative", "loop", "mixed"]
RunStatus = Literal["completed", "failed"]
# "handled": an agent failed for good and an [error_routing] handler agent took the event.
# "compensated": it failed for good, and its completed agents' compensations ran.
FlowStatus = Literal["completed", "handled", "failed", "compensated"]
Priority = Literal["low", "normal", "high", "critical"]
# Temporal's Priority.priority_key: 1 is dispatched first; the server's default is 3.
PRIORITY_KEYS: dict[str, int] = {"critical": 1, "high": 2, "normal": 3, "low": 4}
# Event metadata keys with a meaning (agentflow/client/inputs.py reads them): ``route`` picks
# the agent that takes the event and becomes its ``target_agent`` (it never reaches
# ``state.meta``); an event emitted from inside a handler or callback names its parent.
ROUTE_KEY = "route"
PARENT_EVENT_KEY = "parent_event_id"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Event(BaseModel):
    """What starts a flow: an Event (target, source, session, data, metadata).

    Build one with ``agentflow.new_event(target, data, metadata)``: the metadata keys
    ``session_id``, ``priority``, ``deadline``/``timeout`` and ``route`` set the fields of the
    same meaning. An event emitted from inside a handler or callback carries its parent's id
    in ``metadata["parent_event_id"]`` and the emitting agent in ``source_agent``.
    """

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: datetime = Field(default_factory=_now)
    source_agent: str = ""
    target_agent: str = ""
    session_id: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    # Orders a session's queue, and sets Temporal's dispatch priority of the event's agents.
    priority: Priority = "normal"
    # Not started by then: dead-lettered; started: its agents get at most the time left.
    deadline: datetime | None = None


class State(BaseModel):
    """What agents pass on: ``data`` for payload, ``meta`` for routing strings.

    ``meta["route"]`` hands off to another agent (route mode); ``data["loop_complete"] = True``
    ends a loop; ``meta["publish"] = "topic,…"`` delivers the state to the topics' subscribers.
    ``context`` is the session's durable context: an event of a session starts with it, and
    what its agents leave there is what the session's next event sees.
    """

    data: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, str] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    def clone(self) -> State:
        return self.model_copy(deep=True)


class Invocation(BaseModel):
    """What every call of an agent's function records: which agent, how it ended, on which
    attempt, when and how long, and its error (the fields come first in JSON, as before)."""

    agent: str
    status: RunStatus
    attempt: int = 1
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: float = 0.0
    error: str | None = None


class AgentResult(Invocation):
    """One agent invocation as the flow saw it (after Temporal's retries)."""

    changed_keys: list[str] = Field(default_factory=list)
    # Set on a subscriber's result: the topic it reacted to (its output is not merged).
    topic: str | None = None
    # A failure's type: the exception class, FatalError, AgentOutputError, HookRejected,
    # Timeout, DeadlinePassed ... ([error_routing] sorts these into kinds).
    error_type: str | None = None
    # A before/after_agent_run hook that rejected the event (raised FatalError).
    rejected_by: str | None = None
    # The agent waited for a person: who decided, when and why (agentflow/approval_models.py).
    approval: Approval | None = None
    # An LLM agent's tokens, model requests and tool calls (agentflow/usage.py).
    usage: Usage | None = None
    # Its result came from the result cache (agents' cache): it did not run; ``saved`` is
    # what the cached call had used (tokens this one did not spend).
    cached: bool = False
    saved: Usage | None = None


class FlowInput(BaseModel):
    """Input of every mode workflow: the config the run is pinned to, the event, the state."""

    config: FlowConfig
    event: Event
    state: State
    loop: LoopProgress | None = None
    # The live stream's items a loop carries across continue-as-new (workflows/_stream.py).
    stream: WorkflowStreamState | None = None


class LoopProgress(BaseModel):
    """What a loop carries across continue-as-new: iterations done and recent results."""

    iterations: int = 0
    recent_results: list[AgentResult] = Field(default_factory=list)
    runs: int = 1
    usage: Usage | None = None  # what the loop's LLM agents used in earlier runs


class Compensation(Invocation):
    """One completed agent's ``compensate`` function, run after its flow failed for good
    (workflows/_compensate.py); a failed one is dead-lettered as ``dead_letter_id``."""

    error_type: str | None = None
    dead_letter_id: str | None = None

    def line(self) -> str:
        """How ``agentflow run`` shows it, under the agents' results."""
        if self.status == "completed":
            took = f"attempt {self.attempt}  {self.duration_ms:.1f} ms"
            return f"  ↺ compensated {self.agent}  {took}"
        letter = f"dead letter {self.dead_letter_id}"
        return f"  ✗ compensation of {self.agent} failed: {self.error} ({letter})"


class FlowResult(BaseModel):
    """What a flow run returns: final state, the agent results in order, and how it ended."""

    flow: str
    mode: Mode
    status: FlowStatus = "completed"
    state: State = Field(default_factory=State)
    results: list[AgentResult] = Field(default_factory=list)
    error: str | None = None
    iterations: int | None = None
    stop_reason: str | None = None
    path: list[str] = Field(default_factory=list)
    # status "handled": the [error_routing] agent that took the event after ``error``.
    handled_by: str | None = None
    # Set when a hook rejected the event (a FatalError raised by a callback) ...
    rejected_by: str | None = None
    # ... or when an event hook point failed for good (its callbacks kept raising).
    hook_failed: str | None = None
    # What the run's LLM agents used, summed (agentflow/usage.py).
    usage: Usage | None = None
    # Status "compensated": its completed agents' compensations, in the order they ran.
    compensations: list[Compensation] | None = None


class AgentHooks(BaseModel):
    """The agent-level ``[hooks]`` callbacks, run inside the agent's own activity."""

    before_agent_run: list[str] = Field(default_factory=list)
    after_agent_run: list[str] = Field(default_factory=list)
    agent_error: list[str] = Field(default_factory=list)


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
    hooks: AgentHooks | None = None
    # The approval this call runs after (the handler finds it in event.metadata).
    approval: Approval | None = None
    # An LLM agent: its resolved model settings (``llm`` is the older [llm]-only form), the
    # MCP servers it may use, and, after its first model step, the conversation so far.
    model: ResolvedLLM | None = None
    mcp: MCPConfig | None = None
    turn: LLMTurn | None = None
    # A memory-enabled agent: what it recalled for this call (``memory_retrieve``).
    memory: Recalled | None = None


class HookInput(BaseModel):
    """Input of the ``run_hooks`` activity: one event-level hook point's callbacks."""

    hook: str
    callbacks: list[str]
    event: Event
    state: State
    flow: str = ""
    error: str | None = None  # after_event_handling of an event that failed


class HookOutput(BaseModel):
    """What the callbacks left: the state to go on with, or who rejected the event and why."""

    state: State
    rejected_by: str | None = None
    reason: str | None = None


class CallbackArgs(BaseModel):
    """What a ``[hooks]`` callback gets (CallbackArgs). Return a changed ``State``
    to pass it on (None keeps it); raise ``FatalError`` to reject the event."""

    hook: str
    event: Event
    state: State
    agent: str = ""
    agent_result: AgentResult | None = None
    error: str | None = None
    error_type: str | None = None
    attempt: int = 1


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
    # The handler raised or returned ApprovalRequired: the run waits for a person's decision.
    approval_required: ApprovalAsk | None = None
    # An LLM agent's model step: what it used, and the tool calls it asks for (if any).
    usage: Usage | None = None
    turn: LLMTurn | None = None
    # A result cache hit (agentflow/client/result_cache.py): what the cached call had used.
    cached: bool = False
    saved: Usage | None = None
    # A circuit breaker this call closed, or the fallback agent it ran (activities/breaker.py).
    breaker: str | None = None
    # An LLM reply that ended before its first token batch was signalled: the workflow
    # publishes it to the run's stream as the result arrives (workflows/_calls.py).
    tokens: StreamItem | None = None


FlowInput.model_rebuild()


class FlowFailedError(AgentflowError):
    """A flow run that ended in failure; ``result`` holds what was done before it failed."""

    def __init__(self, message: str, result: FlowResult) -> None:
        super().__init__(message)
        self.result = result
