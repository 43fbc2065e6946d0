"""Emitted events, sessions and dead letters: the models the session workflow keeps.

A session is one long-lived workflow (``workflows/session.py``) that takes events one at a time
in priority order; what cannot be processed becomes a dead letter (``workflows/dead_letter.py``).
Every model here travels in Temporal payloads, so new fields must be optional with defaults.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.contrib.workflow_streams import WorkflowStreamState

from agentflow.config import FlowConfig
from agentflow.models.flow import Event, FlowInput, FlowResult, State
from agentflow.models.usage import Usage

# Temporal's workflow ids are at most 1,000 bytes and a Keyword search attribute value at most
# 2,048; a session's and a dead letter's workflow id hold the flow name, session and event id.
MAX_SESSION_ID_BYTES = 256
MAX_EVENT_ID_BYTES = 256

# Workflow type names (workflows/session.py, workflows/dead_letter.py).

# A repeated event id gets the first event's outcome (the repeat shows in counts.duplicates);
# "moved": the session continued as new first, ask again (the client does).
OutcomeStatus = Literal["completed", "handled", "dead_lettered", "moved", "unknown"]
DeadLetterReason = Literal[
    "agent failed", "deadline passed", "hook rejected", "hook failed", "unreadable",
    "session queue full", "publish denied", "expression failed", "compensation failed",
    "signature invalid", "publisher refused", "config unknown",
]  # fmt: skip


class EmitRequest(BaseModel):
    """What ``emit`` sends to a session: the event, pinned to the config it was emitted with."""

    config: FlowConfig
    event: Event
    # Set when the event is a dead letter emitted again (``dead-letters redrive``).
    redrive_of: str | None = None


class EmitByKey(BaseModel):
    """What ``emit`` sends to a session that has the event's config already: the event and
    the config's key (``config_key``). The config itself travels once per session (in the
    session's start input, or with the first event a process sends it), instead of with every
    event (and into its history). For a key the run does not have, the Update
    (``emit(..., wait=True)``) answers "unknown" with reason ``CONFIG_UNKNOWN`` without taking
    the event, and the client sends an ``EmitRequest`` instead; the signal, which gets no
    answer, dead-letters the event ("config unknown"), to be redriven with its config."""

    config_key: str
    event: Event
    redrive_of: str | None = None


# The reason of the "unknown" outcome of an ``EmitByKey`` whose config the session run lacks.
CONFIG_UNKNOWN = "ConfigUnknown"


def config_key(config: FlowConfig) -> str:
    """The key a session keeps a config under: a hash of its JSON (``SessionState.configs``)."""
    return config_key_of(config.model_dump_json().encode())


def received_config_key(config: FlowConfig) -> str:
    """``config_key`` of a config read from a payload, as its sender computed it: of the fields
    the payload held. Code that added a config field since (with its default) reads an old
    payload with that field unset; hashing the whole config would give another key than the
    one the sender and the recorded history used, and a replay would then miss it."""
    return config_key_of(config.model_dump_json(exclude_unset=True).encode())


def config_key_of(config_json: bytes) -> str:
    """``config_key`` of a config already encoded (``config.model_dump_json()``)."""
    return hashlib.sha256(config_json).hexdigest()[:16]


class QueuedEvent(BaseModel):
    """An accepted event waiting for its turn; ``seq`` is its arrival number in the session.
    Its config is kept once per distinct config (``SessionState.configs[config_key]``)."""

    seq: int
    event: Event
    config_key: str
    accepted_at: datetime
    redrive_of: str | None = None


class EventOutcome(BaseModel):
    """Where one event stands: what ``emit --wait`` and ``EmitHandle.result()`` return."""

    event_id: str
    session_id: str
    status: OutcomeStatus
    result: FlowResult | None = None
    dead_letter_id: str | None = None
    reason: str | None = None
    error: str | None = None


class SessionCounts(BaseModel):
    """Every accepted event is exactly one of processed, dead-lettered, queued or in progress."""

    emitted: int = 0
    completed: int = 0
    handled: int = 0
    dead_lettered: int = 0
    duplicates: int = 0  # repeated event ids: not counted as emitted, never processed twice
    usage: Usage | None = None  # what the events' LLM agents used (agentflow/usage.py)

    @property
    def processed(self) -> int:
        return self.completed + self.handled

    def __add__(self, other: SessionCounts) -> SessionCounts:
        """Sums over sessions (a bus subscriber's delivery sessions)."""
        mine, theirs = self.usage, other.usage
        return SessionCounts(
            emitted=self.emitted + other.emitted,
            completed=self.completed + other.completed,
            handled=self.handled + other.handled,
            dead_lettered=self.dead_lettered + other.dead_lettered,
            duplicates=self.duplicates + other.duplicates,
            usage=theirs if mine is None else mine if theirs is None else mine + theirs,
        )


class InFlight(BaseModel):
    """An event a loop was in the middle of when the session continued as new."""

    queued: QueuedEvent
    flow_input: FlowInput


class SessionState(BaseModel):
    """The session workflow's input: all it carries across continue-as-new."""

    flow: str
    session_id: str
    context: dict[str, Any] = Field(default_factory=dict)
    queue: list[QueuedEvent] = Field(default_factory=list)
    configs: dict[str, FlowConfig] = Field(default_factory=dict)
    counts: SessionCounts = Field(default_factory=SessionCounts)
    seen: list[str] = Field(default_factory=list)  # recent event ids, oldest first
    recent: list[EventOutcome] = Field(default_factory=list)  # last outcomes, no results
    next_seq: int = 1
    runs: int = 1
    in_flight: InFlight | None = None
    idle_timeout_seconds: float | None = None
    max_queued_events: int = 1000
    events_per_run: int = 200
    dedupe_window: int = 10_000
    last_event_at: datetime | None = None
    # Set when the session is reopened from a closed run (``SessionSummary``).
    reopened_from: str | None = None
    # The live stream's recent items, carried across continue-as-new (workflows/_stream.py).
    stream: WorkflowStreamState | None = None


class QueuedView(BaseModel):
    event_id: str
    seq: int
    priority: str
    accepted_at: datetime
    deadline: datetime | None = None


class SessionView(BaseModel):
    """What ``agentflow session show`` prints: the ``session`` query, or a closed run's end."""

    flow: str
    session_id: str
    status: Literal["idle", "processing", "closing", "closed"]
    current: str | None = None
    queued: list[QueuedView] = Field(default_factory=list)
    counts: SessionCounts = Field(default_factory=SessionCounts)
    context: dict[str, Any] = Field(default_factory=dict)
    runs: int = 1
    last_event_at: datetime | None = None
    closed_reason: str | None = None


class SessionSummary(BaseModel):
    """What a closed session returns: its context, counts and the ids it has seen, so that a
    later event to the same session id reopens it where it left off."""

    view: SessionView
    seen: list[str] = Field(default_factory=list)
    next_seq: int = 1
    recent: list[EventOutcome] = Field(default_factory=list)


class DeadLetter(BaseModel):
    """An event that could not be processed, with why and where it failed."""

    id: str
    flow: str
    session_id: str
    reason: DeadLetterReason
    event: Event | None = None  # None: the event could not even be read
    raw: str | None = None  # what arrived, when it could not be read
    failed_agent: str | None = None
    error: str | None = None
    error_type: str | None = None
    attempts: int = 0
    state: State | None = None  # the last state an agent passed on
    result: FlowResult | None = None
    emitted_at: datetime | None = None
    dead_lettered_at: datetime
    redrive_of: str | None = None


class DeadLetterView(BaseModel):
    """A dead letter and what became of it (``dead-letters show``)."""

    letter: DeadLetter
    status: Literal["open", "redriven", "purged"] = "open"
    redriven_as: str | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None


class Redrive(BaseModel):
    """Update input: the letter was emitted again as ``event_id``."""

    event_id: str
    by: str = ""


def initial_state(event: Event, context: dict[str, Any]) -> State:
    """The first agent's state for a session event: its data and metadata, and the context."""
    return State(data=dict(event.data), meta=dict(event.metadata), context=dict(context))
