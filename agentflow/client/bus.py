"""The bus's I/O: registering subscriptions, publishing, and the fan-out (see agentflow/bus.py).

``fan_out`` is the handler of the bus flow's only agent; it runs as a local activity of a
shard session, so it calls Temporal with the worker's own client.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from temporalio import activity
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

# Re-exported: the CLI and tests read the registry from here, like the rest of the bus.
from agentflow.client.batches import add_to_batch, batch_of, batch_session
from agentflow.client.bus_filters import filtered, verify
from agentflow.client.bus_patterns import feed_patterns
from agentflow.client.bus_registrations import cached_registrations
from agentflow.client.bus_registrations import registrations as registrations
from agentflow.client.sessions import EmitHandle, emit, new_event
from agentflow.client.signing import ring_of, signing_ring
from agentflow.config import FlowConfig
from agentflow.config.topics import topic_problem
from agentflow.errors import AgentflowError, ConfigError
from agentflow.models.bus import (
    CHAIN,
    DENIED,
    KEY,
    ORIGIN_FLOW,
    PARENT_EVENT,
    PUBLISH_DENIED,
    PUBLISHER,
    SESSION,
    SIGNATURE,
    SIGNING_KEY,
    TOPIC,
    USER_METADATA,
    Delivery,
    PublishRequest,
    Registration,
    RegistryState,
    Subscriber,
    bus_config,
    delivery_config,
    delivery_event_id,
    delivery_session,
    metadata_problem,
    shard_session,
    subscribers,
    subscribers_of,
)
from agentflow.models.flow import Event, State
from agentflow.models.session import SessionCounts, SessionView
from agentflow.names import (
    BUS_TASK_QUEUE,
    FORGET_UPDATE,
    REGISTER_SIGNAL,
    REGISTER_UPDATE,
    REGISTRY_WORKFLOW,
    REGISTRY_WORKFLOW_ID,
    SESSION_QUERY,
)

# The registry answers an update through a worker; none in this long means none runs.
FORGET_TIMEOUT_SECONDS = 10.0
# The fan-out's failure when Temporal cannot even serve the registry's history (retried).
REGISTRY_UNAVAILABLE = "BusRegistryUnavailable"


async def register(
    client: Client,
    configs: Sequence[FlowConfig],
    task_queue: str | None = None,
    *,
    confirm: bool = False,
) -> list[str]:
    """Record the bus subscriptions of ``configs``: from now on, events published to their
    topics are delivered to each flow on its task queue (``task_queue``, else the flow's own,
    ``FlowConfig.task_queue``), where they wait until a worker of the flow polls. Flows
    without subscribers are skipped; returns the names of the flows registered.

    Durable once this returns, with no worker running (a signal-with-start of the registry):
    ``agentflow register`` does it as a deployment step. ``confirm`` (a worker at start, its
    bus worker polling) waits instead until the registry has applied it (an update-with-start):
    a signal that arrives while the registry's workflow task is held by a worker that just
    stopped stays out of its history until that task times out, and a fan-out reading the
    history in that window would miss it.
    """
    flows = []
    for config in configs:
        queue = task_queue or config.task_queue
        if not subscribers_of(config, queue) and not config.patterns:
            continue
        registration = Registration(flow=config.name, task_queue=queue, config=config,
                                    worker=client.identity,
                                    registered_at=datetime.now(timezone.utc))  # fmt: skip
        summary = "the bus: which flows subscribe to which topics, served where"
        if confirm:
            start: WithStartWorkflowOperation[Any, None] = WithStartWorkflowOperation(
                REGISTRY_WORKFLOW, RegistryState(), id=REGISTRY_WORKFLOW_ID,
                task_queue=BUS_TASK_QUEUE, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                result_type=type(None), static_summary=summary,
            )  # fmt: skip
            await client.execute_update_with_start_workflow(
                REGISTER_UPDATE, registration, start_workflow_operation=start,
                result_type=RegistryState, id=f"register-{config.name}-{uuid.uuid4().hex[:8]}",
            )  # fmt: skip
        else:
            await client.start_workflow(
                REGISTRY_WORKFLOW, RegistryState(), id=REGISTRY_WORKFLOW_ID,
                task_queue=BUS_TASK_QUEUE, start_signal=REGISTER_SIGNAL,
                start_signal_args=[registration], static_summary=summary,
            )  # fmt: skip
        flows.append(config.name)
    return flows


async def forget(client: Client, flow: str) -> None:
    """Remove a flow's registration (a flow retired for good: its deliveries stop)."""
    handle = client.get_workflow_handle(REGISTRY_WORKFLOW_ID)
    update = handle.execute_update(FORGET_UPDATE, flow, result_type=RegistryState)
    try:  # the registry answers through a worker of the bus task queue
        await asyncio.wait_for(update, FORGET_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        raise AgentflowError(
            f"forget {flow}: no worker answered in {FORGET_TIMEOUT_SECONDS:g}s; the registry "
            f"needs a running agentflow worker (it serves task queue {BUS_TASK_QUEUE!r})"
        ) from None
    except WorkflowUpdateFailedError as err:
        raise AgentflowError(f"forget {flow}: {err.cause or err}") from None


async def session_counts(client: Client, workflow_id: str, timeout: float) -> SessionCounts | None:
    """A session's counts, or None when no worker answers its query in time."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        view: SessionView = await asyncio.wait_for(
            handle.query(SESSION_QUERY, result_type=SessionView), timeout
        )
    except (RPCError, asyncio.TimeoutError, WorkflowQueryFailedError):
        return None
    return view.counts


def client_request(
    config: FlowConfig,
    topic: str,
    data: dict[str, Any] | None,
    *,
    identity: str,
    key: str | None = None,
    event_id: str | None = None,
    session_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> PublishRequest:
    """A publish by a client of ``config`` (CLI, Runner), checked against ``[bus] publishes``;
    ``metadata``: its own, which subscription filters read and deliveries carry."""
    problem = topic_problem(topic) or metadata_problem(metadata or {})
    if problem:
        raise ConfigError(f"TOPIC: {problem}" if topic_problem(topic) else problem)
    if not config.may_publish(None, topic):
        allowed = ", ".join(config.bus.publishes or [])
        raise ConfigError(
            f"topic {topic!r} is not in [bus] publishes of flow {config.name!r}; clients of "
            f"it may publish to: {allowed or 'nothing'}"
        )
    # The same checks as an emitted event (ids, sizes): the publish is an event of the bus.
    event = new_event(bus_config(), data, event_id=event_id, session_id=session_id or "x")
    request = PublishRequest(topic=topic, data=event.data, event_id=event.id, key=key,
                             session_id=session_id, publisher=f"client {identity}",
                             metadata=dict(metadata or {}))  # fmt: skip
    return signed(config, request)


def signed(config: FlowConfig, request: PublishRequest) -> PublishRequest:
    """``request`` signed with ``config``'s ``[security]`` signing keys (unchanged without)."""
    ring = signing_ring(config.security)
    return request if ring is None else ring.sign(request)


async def publish(client: Client, request: PublishRequest) -> EmitHandle:
    """Record ``request`` in its bus shard; returns once Temporal has it. Signed with the keys
    of a worker's client (agentflow/client/signing.py) unless it is signed already."""
    if request.signature is None and (ring := ring_of(client)) is not None:
        request = ring.sign(request)
    metadata = {TOPIC: request.topic, PUBLISHER: request.publisher}
    optional = {PARENT_EVENT: request.parent_event, KEY: request.key, DENIED: request.denied,
                ORIGIN_FLOW: request.origin_flow, SESSION: request.session_id,
                CHAIN: json.dumps(request.chain) if request.chain else None,
                SIGNING_KEY: request.signing_key, SIGNATURE: request.signature,
                USER_METADATA: json.dumps(request.metadata) if request.metadata else None,
                }  # fmt: skip
    metadata.update({name: value for name, value in optional.items() if value is not None})
    config = bus_config()
    event = Event(id=request.event_id, session_id=shard_session(request.key, request.event_id),
                  data=dict(request.data), metadata=metadata,
                  source_agent=request.publisher)  # fmt: skip
    event.metadata.setdefault("session_id", event.session_id)
    return await emit(client, config, BUS_TASK_QUEUE, event)


async def fan_out(event: Event, state: State) -> State:
    """The bus flow's agent: one delivery event per subscriber of the published topic, each
    into the subscriber's own session. Repeats (a retried fan-out) dedupe there by event id."""
    request = _request(event, state)
    if request.denied:
        raise ApplicationError(request.denied, type=PUBLISH_DENIED, non_retryable=True)
    verify(activity.client(), request)  # [security] signing: nothing delivered unless it holds
    client = activity.client()
    try:
        found = await cached_registrations(client)  # asked again only after a change
    except RPCError as err:
        if activity.is_cancelled():  # its workflow task was evicted: not a registry failure
            raise asyncio.CancelledError from None
        raise ApplicationError(
            f"the bus registry ({REGISTRY_WORKFLOW_ID}) could not be read: {err.message}",
            type=REGISTRY_UNAVAILABLE,
        ) from None
    subs = [
        sub for sub in subscribers(found, request.topic)
        # Agents of the publishing flow got the event within the publishing run (all but
        # those with filters or accepts_from: they are delivered here, after their checks).
        if not (sub.flow == request.origin_flow and sub.in_run(request.topic)
                and batch_of(found[sub.flow].config, sub) is None)  # batched: never in-run
    ]  # fmt: skip
    subs, refused = filtered(subs, event, request)
    await feed_patterns(client, found, event, request, refused)  # [patterns.NAME]
    sent = await asyncio.gather(*(_deliver(client, found[s.flow], s, request) for s in subs))
    if refused:  # the others got it; this event is dead-lettered, saying why
        raise ApplicationError(refused.message, type=refused.error_type, non_retryable=True)
    return State(data={"topic": request.topic, "deliveries": [d.model_dump() for d in sent]})


async def _deliver(
    client: Client, entry: Registration, sub: Subscriber, request: PublishRequest
) -> Delivery:
    config = delivery_config(entry.config, sub)
    session_id = delivery_session(sub, request, entry.config.bus.max_parallel)
    event_id = delivery_event_id(sub, request.event_id)
    metadata = {**request.metadata, TOPIC: request.topic, PUBLISHER: request.publisher,
                PARENT_EVENT: request.event_id, CHAIN: json.dumps(request.chain),
                "session_id": session_id}  # fmt: skip
    if request.key is not None:
        metadata[KEY] = request.key
    if request.session_id is not None:
        metadata[SESSION] = request.session_id
    source = request.chain[-1] if request.chain else request.publisher
    event = Event(id=event_id, session_id=session_id, data=dict(request.data),
                  metadata=metadata, source_agent=source)  # fmt: skip
    if (batch := batch_of(entry.config, sub)) is not None:  # to its batcher, then in batches
        await add_to_batch(client, config, sub, batch, event)
        session_id = batch_session(sub)  # where its batch runs
    else:
        await emit(client, config, sub.task_queue, event)
    return Delivery(
        subscriber=sub.name, flow=sub.flow, agent=sub.agent, task_queue=sub.task_queue,
        session_id=session_id, event_id=event_id,
    )  # fmt: skip


def _request(event: Event, state: State) -> PublishRequest:
    meta = event.metadata
    return PublishRequest(
        topic=meta[TOPIC], data=state.data, event_id=event.id, key=meta.get(KEY),
        session_id=meta.get(SESSION), publisher=meta.get(PUBLISHER, ""),
        parent_event=meta.get(PARENT_EVENT), chain=json.loads(meta.get(CHAIN, "[]")),
        origin_flow=meta.get(ORIGIN_FLOW), denied=meta.get(DENIED),
        signing_key=meta.get(SIGNING_KEY), signature=meta.get(SIGNATURE),
        metadata=json.loads(meta.get(USER_METADATA, "{}")),
    )  # fmt: skip
