"""A trace's line (``TraceEntry``), its actions, and the small readers of history fields that
every part of the decoder (_decoder.py) uses: times, failures, activity ids."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.api.history.v1 import HistoryEvent

Action = Literal[
    "emitted", "started", "completed", "failed", "retried", "timed out", "handed off",
    "published", "rejected", "dead-lettered", "continued-as-new", "canceled", "terminated",
    "waiting", "approved", "tool", "memory", "compensating", "compensated",
    "compensation failed",
]  # fmt: skip
# Lines that --flow-only keeps: where control moves, without per-attempt detail.
FLOW_ACTIONS = {"emitted", "completed", "failed", "timed out", "handed off", "published",
                "rejected", "dead-lettered", "continued-as-new", "canceled",
                "terminated", "waiting", "approved", "compensated",
                "compensation failed"}  # fmt: skip
LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the SDK core's marker for a local activity
HOOKS = "hooks"  # the AGENT column of event hook lines (before/after_event_handling)
ERROR_HANDOFF = "to error handler "  # a hand-off line's detail: "to error handler X (kind)"


class TraceEntry(BaseModel):
    """One line of a trace (time, event id, agent, action, data)."""

    time: datetime
    workflow_id: str
    run_id: str
    history_event_id: int
    event_id: str = ""
    agent: str = ""  # empty for lines about the flow (or the session) itself
    action: Action
    attempt: int | None = None
    duration_ms: float | None = None
    changed_keys: list[str] = Field(default_factory=list)
    detail: str = ""
    batch: int | None = None  # agents scheduled by the same workflow task ran in parallel
    topic: str = ""  # a published line's topic; on a subscriber's lines, the topic it got
    source_event: int | None = None  # a subscriber's lines: the publisher's completed event
    dead_letter_id: str = ""  # a dead-lettered line: the letter's workflow id
    bus_event: str = ""  # a published line: the event's id on the durable bus
    # The bus's fan-out line: the topic and where each delivery went (agentflow/client/bus.py).
    deliveries: list[dict[str, str]] = Field(default_factory=list)
    # Flows inside flows: a flow agent's started line names its child workflow, and the
    # child's own lines follow it, one level deeper (read.py splices them in).
    child_workflow_id: str = ""
    # ...and its run: a loop's flow agent reuses the child's id in every run of the loop.
    child_run_id: str = ""
    depth: int = 0
    # An emitted line of an event that a handler or callback emitted: the event it came from
    # (a session's trace nests each child's lines one level under its parent's).
    parent_event_id: str = ""


_ACTIVITY_ID = re.compile(r"(?:(\d+)\.)?\d+-(.+)")


def parse_activity_id(activity_id: str) -> tuple[int | None, str]:
    """``"7.2-agent"`` (a session's event 7) or ``"2-agent"`` → (7 or None, ``"agent"``)."""
    match = _ACTIVITY_ID.fullmatch(activity_id)
    if match is None:
        return None, activity_id
    seq = match.group(1)
    return (int(seq) if seq else None), match.group(2)


def event_time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=timezone.utc)


def proto_time(value: Any) -> datetime | None:
    """A protobuf Timestamp as the marker's JSON holds it: ``{"seconds": …, "nanos": …}``."""
    if not isinstance(value, dict) or "seconds" not in value:
        return None
    seconds = float(value["seconds"]) + float(value.get("nanos") or 0) / 1e9
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def failure_text(failure: Any) -> str:
    """The failure's message, prefixed with its error type (e.g. ``ValueError: bad value``)."""
    while failure.HasField("cause") and not failure.message:
        failure = failure.cause
    kind = (
        failure.application_failure_info.type
        if failure.HasField("application_failure_info")
        else ""
    )
    return f"{kind}: {failure.message}" if kind and kind != "FlowFailed" else str(failure.message)


def innermost(failure: Any) -> Any:
    """The application failure an activity failure wraps (or the failure itself)."""
    while not failure.HasField("application_failure_info") and failure.HasField("cause"):
        failure = failure.cause
    return failure


def failure_type(failure: Any) -> str:
    inner = innermost(failure)
    return str(inner.application_failure_info.type)


def is_timeout(failure: Any) -> bool:
    while True:
        if failure.HasField("timeout_failure_info"):
            return True
        if not failure.HasField("cause"):
            return False
        failure = failure.cause


def first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
