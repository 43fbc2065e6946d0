"""Dead letters from a client: list, show, redrive and purge them.

A dead letter is an ``AgentflowDeadLetter`` workflow (``workflows/dead_letter.py``) that stays
open until someone decides what becomes of it. Listing and showing read only what Temporal
recorded (visibility, the letter's memo, its first history event, its result), so they work
with no worker running; redrive and purge record the decision with an Update, which a worker
must answer.

Redrive emits the letter's event again and only then marks the letter: a crash in between is
repaired by running redrive again, because the new event id is derived from the old one and
the session processes a repeated id once.
"""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from agentflow import names
from agentflow.client import sessions, visibility
from agentflow.config import FlowConfig
from agentflow.errors import AgentflowError, ConfigError, NotFoundError
from agentflow.models.flow import Event
from agentflow.models.session import DeadLetter, DeadLetterView, Redrive
from agentflow.names import DEAD_LETTER_WORKFLOW, PURGE_UPDATE, REDRIVEN_UPDATE

# How long a decision waits for a worker to apply it before giving up with a clear message.
DECISION_TIMEOUT_SECONDS = 20.0

DecisionOutcome = Literal["redriven", "already redriven", "purged", "already purged"]


class LetterRow(BaseModel):
    """One line of ``agentflow dead-letters list``."""

    id: str
    run_id: str
    flow: str | None = None
    session_id: str | None = None
    status: str  # open, redriven, purged; or how Temporal ended it (terminated, ...)
    reason: str | None = None
    event_id: str | None = None  # None: the event could not be read
    failed_agent: str | None = None
    error: str | None = None
    dead_lettered_at: datetime | None = None
    redriven_as: str | None = None
    decided_by: str | None = None


@dataclass
class LetterRecord:
    """A dead letter as Temporal holds it: the letter, what became of it, where it runs."""

    view: DeadLetterView
    workflow_status: WorkflowExecutionStatus
    task_queue: str
    run_id: str

    @property
    def status(self) -> str:
        """open, redriven or purged; "terminated" etc. if it was ended from outside."""
        if self.workflow_status in (
            WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED,
        ):  # fmt: skip
            return self.view.status
        return visibility.status_name(self.workflow_status)


@dataclass
class Decision:
    """What ``redrive`` or ``purge`` did to one letter."""

    letter_id: str
    outcome: DecisionOutcome
    view: DeadLetterView
    event_id: str | None = None  # the event emitted by a redrive


def default_actor() -> str:
    """Who decides, when ``--by`` is not given: the OS user."""
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no user name in the environment or the password database
        return "unknown"


async def list_letters(
    client: Client,
    session: str | None = None,
    flow: str | None = None,
    *,
    include_decided: bool = False,
    limit: int | None = None,
) -> AsyncIterator[LetterRow]:
    """Open dead letters, newest first (``include_decided``: redriven and purged ones too)."""
    query = visibility.dead_letter_query(session, flow, open_only=not include_decided)
    try:
        async for execution in client.list_workflows(query, limit=limit):
            yield await _row(client, execution)
    except RPCError as err:
        raise visibility.missing_attribute_error(err, client.namespace) or err from None


async def _row(client: Client, execution: WorkflowExecution) -> LetterRow:
    attrs = execution.typed_search_attributes
    row: dict[str, Any] = {"id": execution.id, "run_id": execution.run_id,
                           "flow": attrs.get(names.FLOW),
                           "session_id": attrs.get(names.SESSION),
                           "status": visibility.status_name(execution.status)}  # fmt: skip
    handle = client.get_workflow_handle(
        execution.id, run_id=execution.run_id, result_type=DeadLetterView
    )
    if execution.status == WorkflowExecutionStatus.COMPLETED:  # decided: its result says how
        view = await handle.result()
        return LetterRow.model_validate({**row, **_letter_fields(view.letter),
                                         "status": view.status, "redriven_as": view.redriven_as,
                                         "decided_by": view.decided_by})  # fmt: skip
    if execution.status == WorkflowExecutionStatus.RUNNING:
        row["status"] = "open"
    memo = await execution.memo()
    if "reason" in memo:  # written with the letter (workflows/_letters.py)
        return LetterRow.model_validate({**row, **{key: memo.get(key) for key in _MEMO_KEYS}})
    letter = await _started_with(client, handle)  # a letter written before the memo existed
    return LetterRow.model_validate({**row, **_letter_fields(letter)})


_MEMO_KEYS = ("reason", "event_id", "failed_agent", "error", "dead_lettered_at")


def _letter_fields(letter: DeadLetter) -> dict[str, Any]:
    return {"reason": letter.reason, "event_id": letter.event.id if letter.event else None,
            "failed_agent": letter.failed_agent, "error": letter.error,
            "dead_lettered_at": letter.dead_lettered_at}  # fmt: skip


async def read_letter(client: Client, letter_id: str) -> LetterRecord:
    """The letter with id ``letter_id`` (its latest run), readable without a worker."""
    handle = client.get_workflow_handle(letter_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"no dead letter {letter_id!r}") from None
        raise
    if description.workflow_type != DEAD_LETTER_WORKFLOW:
        raise AgentflowError(f"{letter_id!r} is not a dead letter (its workflow type is "
                             f"{description.workflow_type})")  # fmt: skip
    status = description.status or WorkflowExecutionStatus.RUNNING
    run = client.get_workflow_handle(
        letter_id, run_id=description.run_id, result_type=DeadLetterView
    )
    if status == WorkflowExecutionStatus.COMPLETED:
        view = await run.result()
    else:
        view = DeadLetterView(letter=await _started_with(client, run))
    return LetterRecord(view, status, description.task_queue, description.run_id)


async def _started_with(client: Client, handle: WorkflowHandle[Any, Any]) -> DeadLetter:
    """The letter a dead-letter workflow was started with: its first history event's input."""
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        letters = await client.data_converter.decode(payloads, [DeadLetter])
        letter: DeadLetter = letters[0]
        return letter
    raise AgentflowError(f"dead letter {handle.id}: its history is gone (retention)")


async def redrive(
    client: Client, config: FlowConfig, letter_id: str, by: str, task_queue: str | None = None
) -> Decision:
    """Emit an open letter's event again into its session, then mark the letter redriven.

    The event keeps its data, metadata, target and priority; its id becomes
    ``sessions.redrive_id(old id)``. Its deadline is dropped: a deadline that has passed would
    dead-letter it again at once, and a redrive is a decision to process it now. The event
    goes to the letter's own task queue (its session's) unless ``task_queue`` is given.
    """
    record = await read_letter(client, letter_id)
    if record.view.status == "redriven":
        return Decision(letter_id, "already redriven", record.view, record.view.redriven_as)
    letter = _redrivable(record, letter_id)
    if letter.flow != config.name:
        raise ConfigError(
            f"dead letter {letter_id} is of flow {letter.flow!r}, but the config is flow "
            f"{config.name!r}: give --config of flow {letter.flow!r}"
        )
    await visibility.require_workers(client, record.task_queue, "record the redrive")
    event = redriven_event(config, letter)
    await sessions.emit(client, config, task_queue or record.task_queue, event,
                        redrive_of=letter_id)  # fmt: skip
    try:
        redrive = Redrive(event_id=event.id, by=by)
        view = await _decide(client, record, letter_id, REDRIVEN_UPDATE, redrive)
    except _Rejected:
        # Another redrive (or a purge) won the race; the event just emitted carries the same
        # id as the winner's, so the session processes it once either way.
        record = await read_letter(client, letter_id)
        if record.view.status == "redriven":
            return Decision(letter_id, "already redriven", record.view, record.view.redriven_as)
        raise AgentflowError(
            f"dead letter {letter_id} was {record.status} meanwhile; its event was emitted "
            f"again as {event.id} all the same"
        ) from None
    return Decision(letter_id, "redriven", view, event.id)


def _redrivable(record: LetterRecord, letter_id: str) -> DeadLetter:
    letter = record.view.letter
    if record.status != "open":
        decided = record.view.decided_at.isoformat() if record.view.decided_at else ""
        raise AgentflowError(
            f"dead letter {letter_id} is {record.status}{' since ' + decided if decided else ''}"
            "; only open letters can be redriven"
        )
    if letter.reason == "compensation failed":  # workflows/_compensate.py: its run has ended
        raise AgentflowError(f"dead letter {letter_id} is a failed compensation of agent "
                             f"{letter.failed_agent!r}, which cannot be redriven: undo what the "
                             "agent did by hand, then purge this letter")  # fmt: skip
    if letter.event is None:
        raise AgentflowError(
            f"dead letter {letter_id} holds an event that could not be read ({letter.reason}), "
            "so it cannot be emitted again; fix it, emit it as a new event, and purge this letter"
        )
    return letter


def redriven_event(config: FlowConfig, letter: DeadLetter) -> Event:
    """The letter's event as it is emitted again: new id, no deadline, checked like any."""
    old = letter.event
    if old is None:
        raise AgentflowError(f"dead letter {letter.id} has no readable event")
    # Its deadline passed (or may have): neither the field nor a deadline in its metadata
    # goes with it, or the redrive would be dead-lettered again.
    metadata = {k: v for k, v in old.metadata.items() if k not in ("deadline", "timeout")}
    return sessions.new_event(
        config, old.data, session_id=letter.session_id, target=old.target_agent or None,
        priority=old.priority, event_id=sessions.redrive_id(old.id), metadata=metadata,
    )  # fmt: skip


async def purge(client: Client, letter_id: str, by: str) -> Decision:
    """Close an open letter without processing its event (it stays readable until retention)."""
    record = await read_letter(client, letter_id)
    if record.view.status == "purged":
        return Decision(letter_id, "already purged", record.view)
    if record.status != "open":
        raise AgentflowError(f"dead letter {letter_id} is {record.status}"
                             f"{_as(record.view)}; only open letters can be purged")  # fmt: skip
    await visibility.require_workers(client, record.task_queue, "record the purge")
    try:
        view = await _decide(client, record, letter_id, PURGE_UPDATE, by)
    except _Rejected:
        record = await read_letter(client, letter_id)
        if record.view.status == "purged":
            return Decision(letter_id, "already purged", record.view)
        raise AgentflowError(f"dead letter {letter_id} was {record.status} meanwhile"
                             f"{_as(record.view)}") from None  # fmt: skip
    return Decision(letter_id, "purged", view)


def _as(view: DeadLetterView) -> str:
    return f" (as {view.redriven_as})" if view.redriven_as else ""


class _Rejected(Exception):
    """The letter turned down the decision: it was decided already."""


async def _decide(
    client: Client, record: LetterRecord, letter_id: str, update: str, arg: Any
) -> DeadLetterView:
    handle = client.get_workflow_handle(letter_id)
    call = handle.execute_update(update, arg, result_type=DeadLetterView)
    what = f"record the {update} of dead letter {letter_id}"
    try:
        view: DeadLetterView = await visibility.worker_answer(
            call, record.task_queue, what, DECISION_TIMEOUT_SECONDS
        )
    except WorkflowUpdateFailedError:  # the validator said no
        raise _Rejected from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # closed since it was read: decided
            raise _Rejected from None
        raise
    return view
