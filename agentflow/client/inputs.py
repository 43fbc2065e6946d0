"""Events and run inputs, checked on the client against Temporal's limits: a bad id, deadline
or input is one clear ConfigError here, never a misleading error from the server or a silent
change (``make_event``, ``new_event``, ``check_run``, ``check_data``).

``make_event(target, data, metadata)`` builds an event the way AgenticGoKit's ``NewEvent``
does, without a config; ``new_event(config, ...)`` also checks the target against the flow.
Both give the metadata keys their meaning: ``session_id`` puts the event in that session,
``priority`` sets its priority, ``deadline`` (ISO 8601) and ``timeout`` (``"30s"``, ``"2m"``,
or seconds) set its deadline (both: the earlier), and ``route`` picks the agent that takes it
in route mode. ``route`` becomes the event's target and leaves the metadata, so that it cannot
reach ``state.meta`` and route the event a second time.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from agentflow.config import FlowConfig
from agentflow.config.formats import duration_seconds
from agentflow.errors import ConfigError
from agentflow.limits import (
    MAX_DATA_ITEMS,
    MAX_DURATION_SECONDS,
    MAX_ID_BYTES,
    MAX_PAYLOAD_BYTES,
    data_items,
    data_problem,
)
from agentflow.models.flow import PRIORITY_KEYS, ROUTE_KEY, Event
from agentflow.models.session import MAX_EVENT_ID_BYTES, MAX_SESSION_ID_BYTES

_PRIORITIES = ", ".join(reversed(PRIORITY_KEYS))  # low, normal, high, critical
# The input travels with the config and event into the start request and every agent's input.
MAX_INPUT_BYTES = MAX_PAYLOAD_BYTES - 128 * 1024
_TIMEOUT_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def make_event(
    target: str = "",
    data: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    *,
    session_id: str | None = None,
    priority: str | None = None,
    deadline: datetime | None = None,
    within: timedelta | None = None,
    event_id: str | None = None,
    source_agent: str = "",
) -> Event:
    """An event as AgenticGoKit's ``NewEvent(target, data, metadata)`` makes one, checked
    against Temporal's limits but not against a flow (``Runner.emit`` checks the target).

    The metadata keys ``session_id``, ``priority``, ``deadline``/``timeout`` and ``route``
    mean what the keywords of the same meaning do; a keyword and a metadata key that disagree
    are one ConfigError. Without a session (keyword or metadata) the event's ``session_id``
    is empty until it is emitted: ``Runner.emit`` puts it in a session of its own (its id), an
    ``emit`` inside a handler into the session of the event being handled.
    """
    return _build(target, data, metadata, session_id, priority, deadline, within, event_id,
                  source_agent)  # fmt: skip


def new_event(
    config: FlowConfig,
    data: dict[str, Any] | None = None,
    *,
    session_id: str | None = None,
    target: str | None = None,
    priority: str | None = None,
    deadline: datetime | None = None,
    within: timedelta | None = None,
    event_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Event:
    """An event of ``config``'s flow (``make_event``, and its target an enabled agent)."""
    event = make_event(target or "", data, metadata, session_id=session_id, priority=priority,
                       deadline=deadline, within=within, event_id=event_id)  # fmt: skip
    check_target(config, event.target_agent)
    return in_session(event)


def as_flow_event(config: FlowConfig, event: Event) -> Event:
    """An ``Event`` built by hand or by ``make_event`` (``read_event``), its target checked
    against ``config``, in its session: the one path every ``Runner.emit(event)`` takes."""
    checked = read_event(event, keep_id=True)
    check_target(config, checked.target_agent)
    return in_session(checked)


def read_event(event: Event, *, keep_id: bool = False) -> Event:
    """An ``Event`` built by hand (``Event(...)``) or by ``make_event``, read as
    ``make_event`` reads its arguments. Fields left at their defaults do not count as given:
    no conflict with metadata, and an id left out stays left out unless ``keep_id``. A
    deadline the event has already wins over metadata ``deadline``/``timeout``."""
    given = event.model_fields_set
    checked = _build(event.target_agent, event.data, event.metadata, event.session_id or None,
                     event.priority if "priority" in given else None, event.deadline, None,
                     event.id if keep_id or "id" in given else None, event.source_agent,
                     deadline_from_metadata=event.deadline is None)  # fmt: skip
    checked.timestamp = event.timestamp
    return checked


def check_target(config: FlowConfig, target: str) -> None:
    """An event's target must be an enabled agent of its flow (empty: the mode decides)."""
    if target and target not in config.enabled_agents():
        known = ", ".join(config.enabled_agents())
        raise ConfigError(f"--target: no enabled agent {target!r}; enabled agents: {known}")


def check_run(data: dict[str, Any] | None, session_id: str | None, workflow_id: str | None) -> None:
    """A run's input, session and workflow id checked against Temporal's limits (ConfigError):
    refused here, they cannot reach the server as a misleading error or a silent change."""
    check_data(data)
    if session_id:
        _check_id("--session", session_id, MAX_SESSION_ID_BYTES)
    if workflow_id is not None:
        _check_id("--workflow-id", workflow_id, MAX_ID_BYTES, "Temporal's limit for workflow ids")


def check_data(data: dict[str, Any] | None) -> None:
    """Input data that Temporal's JSON converter would change (NaN becomes null) or refuse, or
    that holds too many keys for a workflow task to decode in time (MAX_DATA_ITEMS)."""
    if data and (problem := data_problem(data)):
        raise ConfigError(f"--input: {problem}")
    if data and data_items(data) > MAX_DATA_ITEMS:
        raise ConfigError(
            f"--input: holds more than {MAX_DATA_ITEMS:,} keys and list items (all levels); "
            "every workflow task decodes and copies the whole state, and one that runs 2 s is "
            "failed by Temporal's deadlock detector, so keep such data outside the input (a "
            "file or an object store) and pass a reference ([payloads] does not help here)"
        )


def check_input_size(size: int, stored_limit: int | None) -> None:
    """A run's input of ``size`` bytes (as JSON, with the config it carries) must fit in a
    Temporal payload, or in the ``[payloads]`` store (``stored_limit``; None: no store)."""
    if stored_limit is None and size > MAX_INPUT_BYTES:
        raise ConfigError(
            f"--input: the run's input is {size / 1e6:.1f} MB as JSON with the flow's config; "
            f"a Temporal payload is at most {MAX_PAYLOAD_BYTES / 1e6:.1f} MB, so keep large data "
            "outside the input and pass a reference, or keep large payloads in external "
            "storage with a [payloads] table (docs/security-and-payloads.md)"
        )
    if stored_limit is not None and size > stored_limit:
        raise ConfigError(
            f"--input: the run's input is {size / 1e6:.1f} MB as JSON with the flow's config; "
            f"the [payloads] store takes at most {stored_limit / 1e6:.1f} MB (max_bytes), so "
            "raise max_bytes or keep large data outside the input and pass a reference"
        )


def parse_timeout(text: str, where: str = "metadata 'timeout'") -> timedelta:
    """A duration as AgenticGoKit writes one: ``"30s"``, ``"1m30s"``, ``"250ms"``, ``"2h"``,
    ``"1d"``, or a number of seconds (``"30"``, ``"2.5"``)."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        in_units = duration_seconds(text, _TIMEOUT_UNITS)
        if in_units is None:
            raise ConfigError(
                f"{where}: {text!r} is not a duration; use e.g. 30s, 1m30s, 250ms, 2h or a "
                "number of seconds"
            ) from None
        seconds = in_units
    if not 0 < seconds <= MAX_DURATION_SECONDS:
        raise ConfigError(f"{where}: {text!r} must be positive and at most ten years")
    return timedelta(seconds=seconds)


def _build(
    target: str, data: dict[str, Any] | None, metadata: dict[str, str] | None,
    session_id: str | None, priority: str | None, deadline: datetime | None,
    within: timedelta | None, event_id: str | None, source_agent: str,
    *, deadline_from_metadata: bool = True,
) -> Event:  # fmt: skip
    meta = dict(metadata or {})
    _check_metadata(meta)
    target = _agreed("target", target or None, "route", meta.pop(ROUTE_KEY, None)) or ""
    session_id = _agreed("session_id", session_id, "session_id", meta.get("session_id"))
    chosen = _agreed("priority", priority, "priority", meta.get("priority")) or "normal"
    if chosen not in PRIORITY_KEYS:
        where = "--priority" if priority is not None else "metadata 'priority'"
        raise ConfigError(f"{where}: unknown {chosen!r}; allowed: {_PRIORITIES}")
    if deadline is not None and within is not None:
        raise ConfigError("--deadline and --within: give one of them")
    if within is not None:
        if within.total_seconds() <= 0:
            raise ConfigError("--within: must be a positive duration")
        deadline = datetime.now(timezone.utc) + within
    if deadline is not None and deadline.tzinfo is None:
        raise ConfigError("--deadline: give a time zone (RFC 3339, e.g. 2026-11-21T15:00:00Z)")
    if deadline_from_metadata and (from_meta := _metadata_deadline(meta)) is not None:
        if deadline is not None:
            raise ConfigError(
                "deadline: given both as a keyword (deadline/within) and in metadata "
                "(deadline/timeout); give it once"
            )
        deadline = from_meta
    if session_id is not None:
        _check_id("--session", session_id, MAX_SESSION_ID_BYTES)
        meta.setdefault("session_id", session_id)
    check_data(data)
    # An id left out stays out of ``model_fields_set``: emit() inside a handler replaces it
    # with one derived from the parent event, so that a retried attempt repeats it.
    given: dict[str, Any] = {}
    if event_id is not None:
        _check_id("--event-id", event_id, MAX_EVENT_ID_BYTES)
        given["id"] = event_id
    return Event(target_agent=target, source_agent=source_agent, session_id=session_id or "",
                 data=dict(data or {}), metadata=meta, priority=chosen, deadline=deadline,
                 **given)  # fmt: skip


def in_session(event: Event, session_id: str | None = None) -> Event:
    """``event`` in ``session_id``, or (None) in the session it names, else in a session of
    its own (its id): every emitted event has a session."""
    session_id = session_id or event.session_id or event.id
    _check_id("--session", session_id, MAX_SESSION_ID_BYTES)
    metadata = {**event.metadata}
    metadata.setdefault("session_id", session_id)
    return event.model_copy(update={"session_id": session_id, "metadata": metadata})


def _agreed(keyword: str, value: str | None, key: str, in_meta: str | None) -> str | None:
    """A keyword and the metadata key of the same meaning: one value, or one ConfigError."""
    if value is not None and in_meta is not None and value != in_meta:
        raise ConfigError(
            f"{keyword} {value!r} and metadata {key!r} {in_meta!r} disagree; give one of them"
        )
    return value if value is not None else in_meta


def _metadata_deadline(meta: dict[str, str]) -> datetime | None:
    """The deadline that metadata ``deadline`` and ``timeout`` set (both: the earlier)."""
    found: list[datetime] = []
    if (text := meta.get("deadline")) is not None:
        try:
            # Python 3.10's fromisoformat does not take "Z"
            at = datetime.fromisoformat(re.sub("[Zz]$", "+00:00", text.strip()))
        except ValueError:
            raise ConfigError(f"metadata 'deadline': {text!r} is not an ISO 8601 time; use "
                              "e.g. 2026-11-21T15:00:00Z") from None  # fmt: skip
        if at.tzinfo is None:
            raise ConfigError(f"metadata 'deadline': {text!r} has no UTC offset; add Z (UTC) "
                              "or an offset such as +01:00")  # fmt: skip
        found.append(at)
    if (text := meta.get("timeout")) is not None:
        found.append(datetime.now(timezone.utc) + parse_timeout(text))
    return min(found) if found else None


def _check_metadata(meta: dict[str, str]) -> None:
    for key, value in meta.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(f"metadata {key!r}: {value!r}; metadata keys and values are strings")
    # Text JSON cannot encode (a lone surrogate): one line here, not a serializer's error.
    if problem := data_problem(meta, root="metadata"):
        raise ConfigError(problem)


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
