"""Agents of the durable bus example (examples/bus/): an event-driven research and support
system.

Nobody calls anybody. A client publishes ``user.query``; the audit logger, the notifier and
the SMS agent (``support.toml``) and the researcher (``research.toml``, another worker) each
react on their own. The researcher publishes ``research.complete``, and the email agent
(back in ``support.toml``) reacts to that. Every agent writes what it did under
``.agentflow/bus/`` in the worker's directory, one line per event, so a retried attempt
(activities run at least once) writes nothing twice.

The SMS agent fails for good when the query names no phone number: its delivery goes to the
dead letters, and the other subscribers never notice.
"""

from __future__ import annotations

import json
from pathlib import Path

from agentflow import Event, FatalError, State

OUT = Path(".agentflow") / "bus"
RESEARCH_COMPLETE = "research.complete"


def audit_logger(event: Event, state: State) -> None:
    """Records who asked what, and who published it, for compliance."""
    line = (
        f"{event.id} {event.metadata['topic']} from {event.metadata['publisher']}: "
        f"user {_user(state)} asked {_query(state)!r}"
    )
    _write_once("audit.log", line)


def notifier(event: Event, state: State) -> None:
    """Tells the support team a query came in."""
    _write_once("notifications.log", f"{event.id} new query from user {_user(state)}")


def sms(event: Event, state: State) -> None:
    """Texts the user that the query was received; fails for good without a phone number."""
    phone = state.data.get("phone")
    if not phone:
        raise FatalError(f"user {_user(state)} has no phone number to text")
    _write_once("sms.log", f"{event.id} to {phone}: we got your question")


def researcher(event: Event, state: State) -> State:
    """Researches the query and publishes the findings to ``research.complete``."""
    findings = f"Research result for: {_query(state)}"
    _write_once("research.log", f"{event.id} {findings}")
    out = state.clone()
    out.data["findings"] = findings
    out.meta["publish"] = RESEARCH_COMPLETE
    return out


def emailer(event: Event, state: State) -> None:
    """Emails the findings to the user, naming the agents the event came through."""
    chain = json.loads(event.metadata.get("bus_chain", "[]"))
    line = (
        f"{event.id} to user {_user(state)}: {state.data['findings']} ({event.metadata['topic']} "
        f"published by {event.metadata['publisher']}, via {' → '.join(chain)})"
    )
    _write_once("outbox.log", line)


def _query(state: State) -> str:
    query = state.data.get("query")
    if not isinstance(query, str) or not query.strip():
        raise FatalError("a user.query event needs a non-empty string field 'query'")
    return query


def _user(state: State) -> str:
    return str(state.data.get("user") or "anonymous")


def _write_once(name: str, line: str) -> None:
    """Appends ``line`` to ``.agentflow/bus/NAME`` unless an earlier attempt already did."""
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    written = path.read_text("utf-8").splitlines() if path.exists() else []
    if line not in written:
        with path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
