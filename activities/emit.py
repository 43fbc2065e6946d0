"""Emitting events from inside: ``emit`` and ``broadcast``, called by an agent's handler (sync
or async) or a ``[hooks]`` callback while agentflow runs it.

Each emitted event goes into a session, as ``Runner.emit`` sends it, with the config of the
flow being run and its task queue; by default into the session of the event being handled.
Exactly once: a child's id is derived from its parent event's id, the agent or callback that
emits it, the activity call (its workflow run and activity id, the same in every attempt) and
its number among that caller's emits in this attempt. A retried attempt, or one whose worker
died after the emit, emits the same ids again, and the session drops the repeats (it counts
them as duplicates). The child names its parent in ``metadata["parent_event_id"]``.

A sync handler runs in the worker's thread pool (with this module's context carried there):
``emit`` sends from the worker's event loop and returns once Temporal has recorded the event.
On the event loop (an async handler) ``emit`` returns at once; the sends go out in order and
the activity waits for them before it ends, so a failed send fails (and retries) the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client

from agentflow.activities.registry import AgentRegistry
from agentflow.client import sessions
from agentflow.client.inputs import check_target, in_session, make_event, read_event
from agentflow.config import FlowConfig
from agentflow.errors import ConfigError, FatalError
from agentflow.models.flow import PARENT_EVENT_KEY, Event
from agentflow.models.session import MAX_EVENT_ID_BYTES
from agentflow.names import agent_queue

__all__ = ["EmitError", "broadcast", "emit", "emitting", "emitting_as"]


class EmitError(ConfigError, FatalError):
    """An emit that cannot work (a bad target, a session id too long, outside a handler):
    a ConfigError to catch, and, uncaught, it fails the agent without retrying."""


@dataclass
class _Emitter:
    """What one activity attempt emits: where to, and the sends still going out."""

    registry: AgentRegistry
    flow: str
    parent: Event
    agent: str
    client: Client | None
    loop: asyncio.AbstractEventLoop
    task_queue: str
    call: str  # the activity call, the same in every attempt of it
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last: asyncio.Future[Any] | None = None
    sends: list[asyncio.Future[Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Caller:
    emitter: _Emitter
    who: str  # the agent, or "hook:module:function" for a callback
    name: str  # how the child's id names it
    where: str  # how an error names it


_CALLER: ContextVar[_Caller | None] = ContextVar("agentflow_emit_caller", default=None)
_EMITTER: ContextVar[_Emitter | None] = ContextVar("agentflow_emitter", default=None)


@contextlib.asynccontextmanager
async def emitting(
    registry: AgentRegistry, flow: str, parent: Event, agent: str = "",
    *, rate_limited: bool = False,
) -> AsyncIterator[None]:  # fmt: skip
    """Let the handlers and callbacks this activity attempt runs emit; wait for their sends
    before the activity ends (a failed send fails the attempt, which is then retried)."""
    info = activity.info()
    queue = info.task_queue
    if rate_limited:  # a rate-limited agent's activities have a queue of their own
        queue = queue.removesuffix(agent_queue("", agent))
    try:
        client: Client | None = activity.client()
    except RuntimeError:  # an activity run outside a worker (unit tests)
        client = None
    emitter = _Emitter(registry, flow, parent, agent, client, asyncio.get_running_loop(), queue,
                       f"{info.workflow_id}|{info.workflow_run_id}|{info.activity_id}")  # fmt: skip
    token = _EMITTER.set(emitter)
    try:
        yield
    finally:
        _EMITTER.reset(token)
        if emitter.sends:
            results = await asyncio.gather(*emitter.sends, return_exceptions=True)
            if errors := [r for r in results if isinstance(r, BaseException)]:
                raise errors[0]


@contextlib.contextmanager
def emitting_as(who: str, name: str, where: str) -> Iterator[None]:
    """Calls to ``emit`` in this block come from ``who`` (an agent or a callback), named
    ``name`` in the ids of its events and ``where`` in its errors."""
    emitter = _EMITTER.get()
    token = _CALLER.set(None if emitter is None else _Caller(emitter, who, name, where))
    try:
        yield
    finally:
        _CALLER.reset(token)


def emit(
    target: str | Event,
    data: dict[str, Any] | None = None,
    *,
    session_id: str | None = None,
    metadata: dict[str, str] | None = None,
    priority: str | None = None,
) -> Event:
    """Emit a new event from inside a handler or callback: to ``target`` (an agent of this
    flow; "" lets the mode choose), or an ``Event`` made by ``agentflow.new_event``. It goes
    into ``session_id``, else the session its metadata names, else the session of the event
    being handled. Returns the event (its id is known before it is sent).

    ConfigError (EmitError) outside a handler, for a target that is not an enabled agent, or
    a session id that is too long; uncaught, it fails the agent without retrying.
    """
    caller = _caller()
    [event] = _children(caller, [target], data, session_id, metadata, priority)
    _send(caller, [event])
    return event


def broadcast(
    targets: Sequence[str],
    data: dict[str, Any] | None = None,
    *,
    session_id: str | None = None,
    metadata: dict[str, str] | None = None,
    priority: str | None = None,
) -> list[Event]:
    """Emit one event per agent in ``targets``, each with ``data``, as ``emit`` does: all are
    checked before any is sent. Returns the events, in the order of ``targets``."""
    caller = _caller()
    if isinstance(targets, str) or not targets:
        raise EmitError(f"{caller.where}: broadcast: give a list of agents, not {targets!r}")
    events = _children(caller, list(targets), data, session_id, metadata, priority)
    _send(caller, events)
    return events


def _caller() -> _Caller:
    caller = _CALLER.get()
    if caller is None:
        raise EmitError(
            "emit: only inside an agent's handler or a [hooks] callback while agentflow runs "
            "it; elsewhere use Runner.emit"
        )
    return caller


def _children(
    caller: _Caller, targets: list[str | Event], data: dict[str, Any] | None,
    session_id: str | None, metadata: dict[str, str] | None, priority: str | None,
) -> list[Event]:  # fmt: skip
    """The events to send, checked, with their derived ids (numbered in call order)."""
    emitter = caller.emitter
    config = emitter.registry.configs.get(emitter.flow)
    if config is None or emitter.client is None:
        raise EmitError(
            f"{caller.where}: emit: this worker does not serve flow {emitter.flow!r} from a "
            "config, so it cannot send its events"
        )
    with emitter.lock:
        first = emitter.counts.get(caller.who, 0) + 1
        events = []
        for number, target in enumerate(targets, start=first):
            try:
                events.append(_child(caller, config, target, number, data, session_id,
                                     metadata, priority))  # fmt: skip
            except ConfigError as err:
                raise EmitError(f"{caller.where}: emit: {str(err).removeprefix('--')}") from None
        emitter.counts[caller.who] = first + len(events) - 1
    return events


def _child(
    caller: _Caller, config: FlowConfig, target: str | Event, number: int,
    data: dict[str, Any] | None, session_id: str | None, metadata: dict[str, str] | None,
    priority: str | None,
) -> Event:  # fmt: skip
    """One child event: read like ``new_event``, its id derived, in its session, checked."""
    parent = caller.emitter.parent
    if isinstance(target, Event):
        if data is not None or metadata is not None or priority is not None:
            raise ConfigError("emit(event): set data, metadata and priority on the event")
        event = read_event(target)
    elif isinstance(target, str):
        event = make_event(target, data, metadata, priority=priority)
    else:
        raise ConfigError(f"target: an agent name or an Event, not {type(target).__name__}")
    check_target(config, event.target_agent)
    update: dict[str, Any] = {
        "metadata": {**event.metadata, PARENT_EVENT_KEY: parent.id},
        "source_agent": event.source_agent or caller.emitter.agent,
    }
    if "id" not in event.model_fields_set:
        update["id"] = _derived_id(caller, number)
    event = in_session(event.model_copy(update=update),
                       session_id or event.session_id or parent.session_id or None)  # fmt: skip
    sessions.emit_request(config, event, where="data")
    return event


def _derived_id(caller: _Caller, number: int) -> str:
    """A child's id: its parent's id, its caller, the activity call and its number."""
    call = hashlib.sha256(f"{caller.emitter.call}|{caller.who}".encode()).hexdigest()[:8]
    child_id = f"{caller.emitter.parent.id}~{caller.name}-{call}.{number}"
    if len(child_id.encode()) > MAX_EVENT_ID_BYTES:
        child_id = f"{hashlib.sha256(child_id.encode()).hexdigest()[:40]}.{number}"
    return child_id


def _send(caller: _Caller, events: list[Event]) -> None:
    """Send in call order from the worker's event loop; a thread waits for its sends."""
    emitter = caller.emitter
    config, client = emitter.registry.configs[emitter.flow], emitter.client
    if client is None:  # _children refused it already
        raise EmitError(f"{caller.where}: emit: no Temporal client in this activity")

    async def send(after: asyncio.Future[Any] | None) -> None:
        if after is not None:
            with contextlib.suppress(Exception):  # its own error is reported by its future
                await after
        for event in events:
            await sessions.emit(client, config, emitter.task_queue, event)

    def schedule() -> asyncio.Future[Any]:
        task = asyncio.ensure_future(send(emitter.last))
        emitter.last = task
        emitter.sends.append(task)
        return task

    try:
        on_loop = asyncio.get_running_loop() is emitter.loop
    except RuntimeError:
        on_loop = False
    if on_loop:  # an async handler: the activity waits for the send before it ends
        schedule()
        return

    async def scheduled_and_sent() -> None:
        await asyncio.shield(schedule())

    asyncio.run_coroutine_threadsafe(scheduled_and_sent(), emitter.loop).result()
