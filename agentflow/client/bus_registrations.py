"""Reading the bus registry (``AgentflowBusRegistry``): by query, else from its history.

A query is answered by a bus worker: first the registry's sticky worker (the one that ran
its last workflow task), then any worker of the ``agentflow-bus`` task queue. When that
sticky worker was killed, or no bus worker polls, Temporal holds the query for up to its
own ~30 s deadline and then fails it; the fan-out would wait as long for every publish
and retry into the same wait. So the query gets ``REGISTRY_QUERY_SECONDS``; past that the
registrations are read from the registry's history, which the server serves with no
worker: each ``register``/``forget`` update's result is the whole registry after it, so
the last one (else the run's input), plus the ``register_flow`` signals recorded after it
(registrations sent with no worker needed), is the registry now. The registry's
stickiness is reset too, so its next workflow task and query go to a live worker at once.

The fan-out reads it once per published event, so each worker keeps the last answer
(``cached_registrations``) with the registry's version: its run id and history length, which
the server's describe answers without a worker. Every register and forget adds events to that
history (a signal at once; an update before its caller gets the answer), so a changed version
means "ask again", and an unchanged one means nothing was registered or forgotten since.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable
from datetime import timedelta, timezone

from temporalio.api.common.v1 import Payloads, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryReverseRequest,
    ResetStickyTaskQueueRequest,
)
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from agentflow.models.bus import Registration, RegistryState
from agentflow.names import REGISTER_SIGNAL, REGISTRY_QUERY, REGISTRY_WORKFLOW_ID

log = logging.getLogger("agentflow.bus")

# A live registry worker answers in milliseconds; this only bounds waiting on a dead one.
REGISTRY_QUERY_SECONDS = 5.0
# Events per page when reading the history backwards: the answer is near its end.
PAGE_SIZE = 50


# The registry's version (run id, history length) and its registrations, per client.
_CACHE: weakref.WeakKeyDictionary[Client, tuple[tuple[str, int], dict[str, Registration]]] = (
    weakref.WeakKeyDictionary()
)


async def cached_registrations(client: Client) -> dict[str, Registration]:
    """``registrations(client)``, asked again only when the registry has changed since the
    last answer this client got (its version, read by a describe: no worker, no query)."""
    version = await registry_version(client)
    if version is None:
        _CACHE.pop(client, None)
        return {}
    cached = _CACHE.get(client)
    if cached is not None and cached[0] == version:
        return dict(cached[1])
    # Read after the version: a change in between makes the next call ask again, never the
    # other way round (an older answer kept under a newer version).
    found = await registrations(client)
    _CACHE[client] = (version, found)
    return dict(found)


async def registry_version(client: Client) -> tuple[str, int] | None:
    """The registry's current run id and history length; None when there is no registry."""
    request = DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=REGISTRY_WORKFLOW_ID)
    )
    try:
        described = await client.workflow_service.describe_workflow_execution(request)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    info = described.workflow_execution_info
    return info.execution.run_id, info.history_length


async def registrations(client: Client) -> dict[str, Registration]:
    """The registered flows (none when no worker with subscribers has started yet).

    Raises ``RPCError`` only when Temporal itself cannot be read (the caller retries)."""
    handle = client.get_workflow_handle(REGISTRY_WORKFLOW_ID)
    timeout = timedelta(seconds=REGISTRY_QUERY_SECONDS)
    try:
        state: RegistryState = await asyncio.wait_for(
            handle.query(REGISTRY_QUERY, result_type=RegistryState, rpc_timeout=timeout),
            REGISTRY_QUERY_SECONDS + 1,  # the RPC's own deadline should end it first
        )
        return state.registrations
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return {}
        why = f"{err.status.name if err.status else 'error'}: {err.message}"
    except asyncio.TimeoutError:
        why = "no answer"
    except WorkflowQueryFailedError as err:  # its workflow task failing, say
        why = str(err)
    log.warning(
        "the bus registry did not answer its query within %gs (%s); reading its "
        "registrations from its history instead",
        REGISTRY_QUERY_SECONDS, why,
    )  # fmt: skip
    await _unstick(client)
    return (await recorded_state(client)).registrations


async def recorded_state(client: Client) -> RegistryState:
    """The registry's state as its current run's history records it (no worker needed): the
    newest whole state (an update's result, else the run's input), plus the registrations
    signalled after it (``register_flow``: recorded even while no worker ran)."""
    run_id = (await client.get_workflow_handle(REGISTRY_WORKFLOW_ID).describe()).run_id
    request = GetWorkflowExecutionHistoryReverseRequest(
        namespace=client.namespace,
        execution=WorkflowExecution(workflow_id=REGISTRY_WORKFLOW_ID, run_id=run_id),
        maximum_page_size=PAGE_SIZE,
    )
    signalled: list[Registration] = []  # newest first
    state = RegistryState()
    while True:
        page = await client.workflow_service.get_workflow_execution_history_reverse(request)
        found = await _read_page(client, page.history.events, signalled)
        if found is not None:
            state = found
            break
        if not page.next_page_token:
            break
        request.next_page_token = page.next_page_token
    for registration in reversed(signalled):
        state.registrations[registration.flow] = registration
    return state


async def _read_page(
    client: Client, events: Iterable[HistoryEvent], signalled: list[Registration]
) -> RegistryState | None:
    """The whole state if this page (newest first) holds it; the registrations signalled
    after it are added to ``signalled`` on the way."""
    for event in events:
        if (payloads := _signalled(event)) is not None:
            [registration] = await client.data_converter.decode(payloads.payloads, [Registration])
            if isinstance(registration, Registration):
                if registration.registered_at is None:  # as the registry does
                    registration.registered_at = event.event_time.ToDatetime(timezone.utc)
                signalled.append(registration)
        elif (payloads := _state_payloads(event)) is not None:
            [state] = await client.data_converter.decode(payloads.payloads, [RegistryState])
            return state if isinstance(state, RegistryState) else RegistryState()
    return None


def _state_payloads(event: HistoryEvent) -> Payloads | None:
    """The whole registry, if ``event`` records it: an update's result, or the run's input."""
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
        outcome = event.workflow_execution_update_completed_event_attributes.outcome
        return outcome.success if outcome.HasField("success") else None
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        return event.workflow_execution_started_event_attributes.input
    return None


def _signalled(event: HistoryEvent) -> Payloads | None:
    """The registration a ``register_flow`` signal carries, if ``event`` is one."""
    if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        return None
    attributes = event.workflow_execution_signaled_event_attributes
    return attributes.input if attributes.signal_name == REGISTER_SIGNAL else None


async def _unstick(client: Client) -> None:
    """Send the registry's next workflow task and query to any bus worker, not to the one
    it last ran on (best effort: without it Temporal moves on after its sticky timeout)."""
    request = ResetStickyTaskQueueRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=REGISTRY_WORKFLOW_ID)
    )
    try:
        await client.workflow_service.reset_sticky_task_queue(
            request, timeout=timedelta(seconds=REGISTRY_QUERY_SECONDS)
        )
    except RPCError as err:
        log.info("could not reset the bus registry's sticky worker: %s", err.message)
