"""Starting flows from Python: ``Runner.from_config("agentflow.toml").run({...})``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, TimeoutError
from temporalio.service import RPCError

from agentflow.client import approvals, sessions, telemetry, visibility
from agentflow.client import bus as bus_client
from agentflow.client.connection import connect_flow, ui_url
from agentflow.client.inputs import as_flow_event, check_input_size, make_event
from agentflow.client.payloads import stored_payload_limit
from agentflow.config import DEFAULT_CONFIG_FILE, FlowConfig, load_config
from agentflow.config.code_checks import unrunnable
from agentflow.errors import ConfigError
from agentflow.models import attributes
from agentflow.models.approval import Approval
from agentflow.models.flow import Event, FlowFailedError, FlowInput, FlowProgress, FlowResult, State
from agentflow.models.session import SessionView
from agentflow.models.stream import Streamed, stream
from agentflow.names import MODE_WORKFLOWS


@dataclass
class FlowHandle:
    """A started flow run."""

    workflow_id: str
    run_id: str
    config: FlowConfig
    handle: WorkflowHandle[Any, FlowResult]
    ui_url: str
    client: Client  # the client that started it: ``stream`` follows continue-as-new with it

    def stream(self, from_offset: int = 0, *, tokens: bool = True) -> AsyncIterator[Streamed]:
        """The run's live items from ``from_offset`` on (``async for s in handle.stream()``);
        resume after ``s`` with ``from_offset=s.offset + 1``. Ends once the run has ended and
        every kept item was read (agentflow/models/stream.py)."""
        return stream(self.client, self.workflow_id, from_offset=from_offset, tokens=tokens)

    async def result(self) -> FlowResult:
        """Wait for the run; raise FlowFailedError (with the partial result) if it failed."""
        try:
            return await self.handle.result()
        except WorkflowFailureError as err:
            raise _flow_failed(self.config, err) from err

    async def progress(self) -> FlowProgress:
        """Agents done / running / failed so far (a query: the run's worker must be up)."""
        return await visibility.query_progress(self.handle)


class Runner:
    """Starts runs of one flow. The run is pinned to the config it started with."""

    def __init__(
        self,
        config: FlowConfig,
        client: Client | None = None,
        task_queue: str | None = None,
        *,
        eager_start: bool = False,
    ) -> None:
        self.config = config
        self.task_queue = task_queue or config.task_queue  # [temporal] or the flow's own
        self._client = client
        # Ask the server to hand the first workflow task straight to a worker of this client's
        # process (saves a poll round trip; needs a worker on the same client and task queue).
        self.eager_start = eager_start

    @classmethod
    def from_config(
        cls,
        path: str | Path = DEFAULT_CONFIG_FILE,
        *,
        client: Client | None = None,
        task_queue: str | None = None,
        check_handlers: bool = True,
    ) -> Self:
        """Load and validate ``path`` (ConfigError on a bad file); connect on first use."""
        config = load_config(path, check_handlers=check_handlers)
        return cls._for_file(config, Path(path), client, task_queue)

    @classmethod
    def _for_file(
        cls, config: FlowConfig, path: Path, client: Client | None, task_queue: str | None
    ) -> Self:
        return cls(config, client, task_queue)

    async def client(self) -> Client:
        if self._client is None:
            self._client = await connect_flow(
                self.config, telemetry.interceptors(self.config.telemetry)
            )
        return self._client

    async def start(
        self,
        data: dict[str, Any] | None = None,
        *,
        target: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, str] | None = None,
        workflow_id: str | None = None,
    ) -> FlowHandle:
        """Start a run without waiting for it. ``metadata`` keys mean what they mean in an
        event (``route``: the target, ``session_id``: the session; see ``new_event``)."""
        if problem := unrunnable(self.config):
            raise ConfigError(problem)
        event = make_event(target or "", data, metadata, session_id=session_id)
        target, session_id = event.target_agent or None, event.session_id or None
        if target is not None and target not in self.config.enabled_agents():
            known = ", ".join(self.config.enabled_agents())
            raise ConfigError(f"--target: no enabled agent {target!r}; enabled agents: {known}")
        sessions.check_run(data, session_id, workflow_id)
        if session_id:
            event.metadata.setdefault("session_id", session_id)
        # The event's data becomes the first agent's state.data and travels only there:
        # repeating it in the event would double every payload (Temporal caps each at 2 MB).
        flow_input = FlowInput(
            config=self.config,
            event=event.model_copy(update={"data": {}}),
            state=State(data=event.data, meta=dict(event.metadata)),
        )
        client = await self.client()
        # Refused here, too large an input fails at the server as "Blob data size exceeds limit"
        # or, near the limit, fails the first agent; a [payloads] store takes larger ones (a
        # store of the caller's own, of unknown size, is left to say so itself).
        stored = stored_payload_limit(client.data_converter)
        if stored is not None or client.data_converter.external_storage is None:
            check_input_size(len(flow_input.model_dump_json()), stored)
        workflow_id = workflow_id or _workflow_id(self.config.name, session_id)
        try:
            handle: WorkflowHandle[Any, FlowResult] = await client.start_workflow(
                MODE_WORKFLOWS[self.config.mode],
                flow_input,
                id=workflow_id,
                task_queue=self.task_queue,
                execution_timeout=timedelta(seconds=self.config.orchestration.timeout_seconds),
                task_timeout=timedelta(
                    seconds=self.config.orchestration.workflow_task_timeout_seconds
                ),
                result_type=FlowResult,
                # Filterable and readable in the Temporal UI (agentflow/visibility.py).
                search_attributes=attributes.search_attributes(self.config, session_id),
                static_summary=attributes.static_summary(self.config, event.data),
                static_details=attributes.static_details(self.config, session_id),
                request_eager_start=self.eager_start,
            )
        except RPCError as err:
            raise visibility.missing_attribute_error(err, client.namespace) or err from None
        run_id = handle.first_execution_run_id or handle.result_run_id or ""
        link = ui_url(client, workflow_id, run_id, self.config.temporal.ui_url)
        return FlowHandle(workflow_id, run_id, self.config, handle, link, client)

    async def emit(
        self,
        data: dict[str, Any] | Event | None = None,
        *,
        session_id: str | None = None,
        wait: bool = False,
        **event: Any,
    ) -> sessions.EmitHandle:
        """Emit an event into its session and return once Temporal has recorded it durably.

        Events of one session run one at a time, by ``priority`` then arrival, and share the
        session's context; ``session_id`` defaults to the event's id (a session of one event).
        Keyword options: ``target``, ``priority`` (low/normal/high/critical), ``deadline`` (an
        aware datetime) or ``within`` (a timedelta), ``event_id`` (repeats are processed
        once), ``metadata``. ``wait=True`` returns after the event is processed instead.

        ``emit(event)`` sends an ``Event`` made by ``agentflow.new_event(target, data,
        metadata)`` (or by hand), its metadata read the same way and its target checked
        against this flow; its options are its own, so only ``wait`` may go with it.
        """
        if isinstance(data, Event):
            if session_id is not None or event:
                given = ", ".join(sorted([*event, *(["session_id"] if session_id else [])]))
                raise ConfigError(
                    f"emit(event): {given}: set these on the event itself "
                    "(new_event(target, data, metadata)); only wait= goes with it"
                )
            return await self.emit_event(as_flow_event(self.config, data), wait=wait)
        return await self.emit_event(self.new_event(data, session_id=session_id, **event),
                                     wait=wait)  # fmt: skip

    def new_event(
        self, data: dict[str, Any] | None = None, *, session_id: str | None = None, **event: Any
    ) -> Event:
        """The event ``emit`` would send, checked (ConfigError on bad input), not yet sent:
        its ``id`` and ``session_id`` are known before it is emitted with ``emit_event``."""
        return sessions.new_event(self.config, data, session_id=session_id, **event)

    async def emit_event(self, event: Event, *, wait: bool = False) -> sessions.EmitHandle:
        """Emit an event made by ``new_event`` (``emit`` is the two in one)."""
        return await sessions.emit(await self.client(), self.config, self.task_queue, event,
                                   wait=wait)  # fmt: skip

    async def publish(
        self,
        topic: str,
        data: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        event_id: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> sessions.EmitHandle:
        """Publish ``data`` to ``topic`` on the durable bus; return once Temporal has recorded
        it. Every subscriber (agents and flows of any config, on any worker) gets it once;
        ``key`` keeps a key's events in order for ordered subscribers; ``event_id`` dedupes
        repeats; ``session_id`` sends the deliveries into that session of each subscriber;
        ``metadata`` (strings) is read by subscription filters and carried by deliveries.
        The topic must be allowed by this config's ``[bus] publishes`` (ConfigError if not,
        raised before connecting, like every other check of the request)."""
        checked = bus_client.client_request(
            self.config, topic, data, identity="", key=key, event_id=event_id,
            session_id=session_id, metadata=metadata,
        )  # fmt: skip
        client = await self.client()  # the publisher is named once the client knows itself
        request = checked.model_copy(update={"publisher": f"client {client.identity}"})
        # Signed again ([security] signing): the publisher is part of what is signed.
        return await bus_client.publish(client, bus_client.signed(self.config, request))

    async def approve(
        self, workflow_id: str, *, agent: str | None = None, comment: str = "",
        by: str | None = None,
    ) -> Approval:  # fmt: skip
        """Approve what ``agent`` (an agent or approval id; None: the only approval waiting)
        waits for in the run or session ``workflow_id``; ``by`` defaults to the OS user.
        ApprovalDecisionError if the run turns it down (nothing waits, decided already)."""
        request = approvals.decision(True, agent, by, comment)
        return await approvals.decide(await self.client(), workflow_id, request)

    async def reject(
        self, workflow_id: str, reason: str, *, agent: str | None = None, by: str | None = None
    ) -> Approval:
        """Reject it: the agent fails with ``ApprovalRejected`` ([error_routing] kind
        "rejected"), and ``reason`` goes into its result and the trace."""
        request = approvals.decision(False, agent, by, reason)
        return await approvals.decide(await self.client(), workflow_id, request)

    async def session(self, session_id: str) -> SessionView:
        """A session of this flow: status, queue, counts and context (AgentflowError if the
        flow has no such session)."""
        return await sessions.session_view(await self.client(), self.config.name, session_id)

    async def has_workers(self) -> bool:
        """Whether any worker polls this flow's task queue (a run without one just waits)."""
        return await visibility.has_workers(await self.client(), self.task_queue)

    async def run(self, data: dict[str, Any] | None = None, **options: Any) -> FlowResult:
        """Start a run and wait for its result (FlowFailedError if it fails)."""
        handle = await self.start(data, **options)
        return await handle.result()


def _workflow_id(flow: str, session_id: str | None) -> str:
    suffix = uuid.uuid4().hex[:12]
    return f"{flow}-{session_id}-{suffix}" if session_id else f"{flow}-{suffix}"


def _flow_failed(config: FlowConfig, err: WorkflowFailureError) -> FlowFailedError:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == "FlowFailed" and cause.details:
        partial = FlowResult.model_validate(cause.details[0])
        return FlowFailedError(cause.message, partial)
    if isinstance(cause, TimeoutError):
        message = (
            f"flow {config.name!r} timed out after "
            f"{config.orchestration.timeout_seconds:g}s (orchestration.timeout_seconds)"
        )
    else:
        message = f"flow {config.name!r} failed: {cause or err}"
    partial = FlowResult(flow=config.name, mode=config.mode, status="failed", error=message)
    return FlowFailedError(message, partial)
