"""The durable bus across flows and workers: names, models and the pure rules of delivery.

How an event travels (the I/O lives in ``agentflow/bus_client.py``):

1. **Publish** (``agentflow publish``, ``Runner.publish``, or an agent's ``meta["publish"]``)
   emits the event into one of ``SHARDS`` sessions of the internal ``agentflow-bus`` flow,
   chosen by its key (else its id). The call returns once Temporal has recorded it; the
   session dedupes repeated event ids, and takes one event at a time, so events with the same
   key leave it in publish order.
2. **Fan-out**: the shard's only agent (a local activity) reads the subscriptions that workers
   registered (the ``AgentflowBusRegistry`` workflow) and emits one delivery event per
   subscriber into that subscriber's own session, on the subscriber's task queue.
3. **Delivery**: the subscriber's session runs it like any emitted event: its retries and
   timeout, hooks, error routing and dead letters. Its workers down: it waits in Temporal.

Pure code: workflows import this module.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from agentflow.config import AgentConfig, FlowConfig, FlowMeta, OrchestrationConfig
from agentflow.config.topics import accepts, filters_of, matches, matches_any, patterns_of
from agentflow.limits import data_problem
from agentflow.names import BUS_FLOW, FAN_OUT_HANDLER

FAN_OUT_AGENT = "fan-out"
# Fixed, not configurable: every publisher must pick the same shard for a key.
SHARDS = 8
# The flow itself (not one of its agents) as a subscriber.
WHOLE_FLOW = "*"

# Event metadata the bus sets. A publishing handler cannot set them: the workflow or the
# client builds them, never from the handler's output.
TOPIC = "topic"
PUBLISHER = "publisher"
PARENT_EVENT = "parent_event"
CHAIN = "bus_chain"  # JSON list: the agents that published along the way, first to last
KEY = "bus_key"
SESSION = "bus_session"  # the publish named a session: deliveries go to it, chains keep it
ORIGIN_FLOW = "bus_origin_flow"  # its agents' subscribers got the event within the run
DENIED = "bus_denied"  # why the publisher may not publish this: dead-lettered, not delivered
PUBLISH_DENIED = "PublishDenied"  # the error type of that dead letter
USER_METADATA = "bus_metadata"  # JSON: a publish's own metadata, in the bus event
# A ``when`` (CEL) that could not be evaluated on an event: dead letter "expression failed".
EXPRESSION_FAILED = "ExpressionFailed"
# Signed events ([security] signing_keys_env): the signature and the id of the key that made
# it; an event whose signature does not hold is dead-lettered ("signature invalid").
SIGNATURE = "bus_signature"
SIGNING_KEY = "bus_signing_key"
SIGNATURE_INVALID = "SignatureInvalid"
# A subscriber's ``accepts_from`` does not name the publisher: "publisher refused".
PUBLISHER_REFUSED = "PublisherRefused"
# The fan-out's refusals by error type: the reason of the bus's dead letter.
BUS_REFUSALS: dict[str, Literal["expression failed", "signature invalid", "publisher refused"]] = {
    EXPRESSION_FAILED: "expression failed",
    SIGNATURE_INVALID: "signature invalid",
    PUBLISHER_REFUSED: "publisher refused",
}


class Registration(BaseModel):
    """One flow's subscriptions, as the worker that serves it registered them."""

    flow: str
    task_queue: str
    config: FlowConfig
    worker: str = ""  # the worker's Temporal identity (pid@host)
    registered_at: datetime | None = None


class RegistryState(BaseModel):
    """The registry workflow's input and its query's answer: registrations by flow name."""

    registrations: dict[str, Registration] = Field(default_factory=dict)


class Subscriber(BaseModel):
    """One subscriber of a topic: an agent of a flow, or the whole flow (``agent == "*"``)."""

    flow: str
    agent: str
    task_queue: str
    patterns: list[str]
    ordered: bool = False
    # Pattern -> CEL ``when`` of its filtered entries (evaluated by the fan-out activity).
    filters: dict[str, str] = Field(default_factory=dict)
    # The publishers it takes events from (glob patterns); None: anyone.
    accepts_from: list[str] | None = None

    def in_run(self, topic: str) -> bool:
        """Whether an agent of the publishing flow got ``topic`` within the publishing run
        (FlowConfig.subscribers); else the bus delivers it, after its checks."""
        return self.agent != WHOLE_FLOW and not self.conditions(topic) and self.accepts_from is None

    def accepts(self, publisher: str) -> bool:
        return self.accepts_from is None or accepts(self.accepts_from, publisher)

    def conditions(self, topic: str) -> list[str]:
        """The ``when`` expressions that decide whether ``topic``'s event is delivered (any
        one true delivers it); empty when an entry without ``when`` matches (always)."""
        found = [pattern for pattern in self.patterns if matches(pattern, topic)]
        if any(pattern not in self.filters for pattern in found):
            return []
        return [self.filters[pattern] for pattern in found]

    @property
    def name(self) -> str:
        return self.flow if self.agent == WHOLE_FLOW else f"{self.flow}.{self.agent}"


class PublishRequest(BaseModel):
    """One publish: what the ``bus_publish`` activity and ``Runner.publish`` send."""

    topic: str
    data: dict[str, object] = Field(default_factory=dict)
    event_id: str
    key: str | None = None
    session_id: str | None = None  # deliveries go to this session of each subscriber
    publisher: str  # "flow.agent", or "client <identity>"
    parent_event: str | None = None
    chain: list[str] = Field(default_factory=list)
    origin_flow: str | None = None
    denied: str | None = None
    # The publisher's own metadata (Runner.publish(metadata=)): filters read it as
    # ``metadata``, deliveries carry it; it may not use a key the bus sets.
    metadata: dict[str, str] = Field(default_factory=dict)
    signing_key: str | None = None  # the id of the key that signed it
    signature: str | None = None  # base64 HMAC-SHA256 of signed_bytes()


def signed_bytes(request: PublishRequest) -> bytes:
    """What a signature covers: every field of the publish but the signature, canonical JSON."""
    fields = request.model_dump(mode="json", exclude={"signature"})
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


class Delivery(BaseModel):
    """Where the fan-out sent one event for one subscriber."""

    subscriber: str
    flow: str
    agent: str
    task_queue: str
    session_id: str
    event_id: str


def subscribers(registrations: dict[str, Registration], topic: str) -> list[Subscriber]:
    """Every subscriber of ``topic``, in flow then config order: one per agent (or flow)
    however many of its patterns match."""
    return [
        sub
        for flow in sorted(registrations)
        for sub in subscribers_of(registrations[flow].config, registrations[flow].task_queue)
        if matches_any(sub.patterns, topic)
    ]


def subscribers_of(config: FlowConfig, task_queue: str) -> list[Subscriber]:
    """The subscribers a worker serving ``config`` on ``task_queue`` registers."""
    bus, agents = config.bus, config.agents
    wanted = [(WHOLE_FLOW, bus.subscribes, bus.ordered, bus.accepts_from)] + [
        (name, agents[name].subscribes, agents[name].ordered, agents[name].accepts_from)
        for name in config.enabled_agents()
    ]
    return [
        Subscriber(
            flow=config.name,
            agent=agent,
            task_queue=task_queue,
            patterns=patterns_of(subs),
            ordered=ordered,
            filters=filters_of(subs),
            accepts_from=accepts_from,
        )
        for agent, subs, ordered, accepts_from in wanted
        if subs
    ]


def shard_session(key: str | None, event_id: str) -> str:
    """The bus session that takes a publish: by key, so a key's events stay in order."""
    return f"shard-{_bucket(key if key is not None else event_id, SHARDS)}"


def delivery_session(sub: Subscriber, request: PublishRequest, max_parallel: int) -> str:
    """The subscriber's session for this event: the publish's session when it names one;
    else one of ``max_parallel`` slots, by key when the subscriber is ordered."""
    if request.session_id is not None:
        slot = request.session_id
    elif sub.ordered and request.key is not None:
        slot = f"k{_bucket(request.key, max_parallel)}"
    else:
        slot = f"p{_bucket(request.event_id, max_parallel)}"
    return short_id(f"bus:{sub.agent}:{slot}")


def delivery_event_id(sub: Subscriber, event_id: str) -> str:
    return short_id(f"{event_id}@{sub.name}")


def delivery_config(config: FlowConfig, sub: Subscriber) -> FlowConfig:
    """What a delivery runs: the whole flow, or just the subscribing agent (with the flow's
    hooks, error routing and in-run subscribers)."""
    if sub.agent == WHOLE_FLOW:
        return config
    orchestration = config.orchestration.model_copy(
        update={"mode": "sequential", "sequential_agents": [sub.agent]}
    )
    return config.model_copy(update={"orchestration": orchestration})


def publication_id(run_id: str, activity_id: str, topic: str) -> str:
    """The bus event an agent's publish becomes: from its run, its call and the topic, so a
    replay or a retried ``bus_publish`` names the same event (and the trace can find it)."""
    return short_id(f"{run_id}/{activity_id}/{topic}")


def chain_of(metadata: dict[str, str]) -> list[str]:
    """The publishers an event passed through (empty for one that did not come by the bus)."""
    raw = metadata.get(CHAIN)
    if not raw:
        return []
    chain = json.loads(raw)
    return [str(name) for name in chain] if isinstance(chain, list) else []


def bus_config() -> FlowConfig:
    """The internal flow whose sessions (the shards) fan published events out."""
    return FlowConfig(
        agent_flow=FlowMeta(name=BUS_FLOW, description="the durable bus: fan-out"),
        orchestration=OrchestrationConfig(
            mode="sequential",
            sequential_agents=[FAN_OUT_AGENT],
            retry_attempts=10,
            # A shard's workflow task runs up to 10 fan-outs (local activities: calls to the
            # server). Under a burst on a busy machine those took 7-10 s; at the default 10 s
            # the task timed out, its fan-outs ran again and timed out again (W16, RESULTS.md).
            workflow_task_timeout_seconds=30,
        ),
        agents={FAN_OUT_AGENT: AgentConfig(handler=FAN_OUT_HANDLER, local=True)},
    )


def _bucket(value: str, buckets: int) -> int:
    digest = hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def short_id(value: str, limit: int = 256) -> str:
    """``value``, or a digest of it when it is longer than an id may be."""
    if len(value.encode("utf-8", errors="surrogatepass")) <= limit:
        return value
    raw = value.encode("utf-8", errors="surrogatepass")
    head = raw[:160].decode("utf-8", errors="ignore")
    return f"{head}#{hashlib.sha256(raw).hexdigest()}"


# What an agent sets in its output's meta to publish: topics, comma-separated, and the key
# (else the event's own key). The workflow takes them out of the state it passes on.
PUBLISH = "publish"
PUBLISH_KEY = "publish_key"


def published_topics(value: str | None) -> list[str]:
    """``meta["publish"]`` as topics: comma-separated, blanks and repeats dropped."""
    names = (name.strip() for name in (value or "").split(","))
    return list(dict.fromkeys(name for name in names if name))


def metadata_problem(metadata: dict[str, str]) -> str | None:
    """Why a publish's own metadata cannot travel (a key the bus sets, a value not a string)."""
    for name, value in metadata.items():
        if name in (TOPIC, PUBLISHER, PARENT_EVENT, "session_id") or name.startswith("bus_"):
            return f"metadata key {name!r} is set by the bus; use another name"
        if not isinstance(value, str):
            return f"metadata {name!r}: values are strings, not {type(value).__name__}"
    # Text JSON cannot encode (a lone surrogate): named here, not a serializer's error.
    return data_problem(metadata, root="metadata")
