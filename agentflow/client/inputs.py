"""Events and run inputs, checked on the client against Temporal's limits: a bad id, deadline
or input is one clear ConfigError here, never a misleading error from the server or a silent
change (``new_event``, ``check_run``, ``check_data``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from agentflow.config import FlowConfig
from agentflow.errors import ConfigError
from agentflow.limits import MAX_ID_BYTES, data_problem
from agentflow.models.flow import PRIORITY_KEYS, Event
from agentflow.models.session import MAX_EVENT_ID_BYTES, MAX_SESSION_ID_BYTES


def new_event(
    config: FlowConfig,
    data: dict[str, Any] | None = None,
    *,
    session_id: str | None = None,
    target: str | None = None,
    priority: str = "normal",
    deadline: datetime | None = None,
    within: timedelta | None = None,
    event_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Event:
    """An event checked against Temporal's limits, with one clear error for bad input."""
    if priority not in PRIORITY_KEYS:
        raise ConfigError(f"--priority: unknown {priority!r}; allowed: low, normal, high, critical")
    if deadline is not None and within is not None:
        raise ConfigError("--deadline and --within: give one of them")
    if within is not None:
        if within.total_seconds() <= 0:
            raise ConfigError("--within: must be a positive duration")
        deadline = datetime.now(timezone.utc) + within
    if deadline is not None and deadline.tzinfo is None:
        raise ConfigError("--deadline: give a time zone (RFC 3339, e.g. 2026-11-21T15:00:00Z)")
    if target is not None and target not in config.enabled_agents():
        known = ", ".join(config.enabled_agents())
        raise ConfigError(f"--target: no enabled agent {target!r}; enabled agents: {known}")
    event_id = str(uuid.uuid4()) if event_id is None else event_id
    _check_id("--event-id", event_id, MAX_EVENT_ID_BYTES)
    session_id = event_id if session_id is None else session_id
    _check_id("--session", session_id, MAX_SESSION_ID_BYTES)
    check_data(data)
    meta = dict(metadata or {})
    meta.setdefault("session_id", session_id)
    return Event(id=event_id, target_agent=target or "", session_id=session_id,
                 data=dict(data or {}), metadata=meta, priority=priority,
                 deadline=deadline)  # fmt: skip


def check_run(data: dict[str, Any] | None, session_id: str | None, workflow_id: str | None) -> None:
    """A run's input, session and workflow id checked against Temporal's limits (ConfigError):
    refused here, they cannot reach the server as a misleading error or a silent change."""
    check_data(data)
    if session_id:
        _check_id("--session", session_id, MAX_SESSION_ID_BYTES)
    if workflow_id is not None:
        _check_id("--workflow-id", workflow_id, MAX_ID_BYTES, "Temporal's limit for workflow ids")


def check_data(data: dict[str, Any] | None) -> None:
    """Input data that Temporal's JSON converter would change (NaN becomes null) or refuse."""
    if data and (problem := data_problem(data)):
        raise ConfigError(f"--input: {problem}")


def _check_id(
    flag: str, value: str, limit: int,
    why: str = "it becomes part of a Temporal workflow id and search attribute",
) -> None:  # fmt: skip
    if not value.strip():
        raise ConfigError(f"{flag}: must not be empty")
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > limit:
        raise ConfigError(f"{flag}: {size} bytes; at most {limit} ({why})")
    if any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ConfigError(f"{flag}: control characters and lone surrogates are not allowed")
