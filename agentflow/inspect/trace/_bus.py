"""Bus lines of a trace: an agent whose output sets ``meta["publish"]`` gets a ``published``
line per topic (its subscribers in this flow, its event id on the durable bus), and the bus's
own fan-out flow (agentflow/client/bus.py) shows on its completed line where each delivery went.
A subscriber's own lines carry the topic and its publisher's completed event
(_activities.py)."""

from __future__ import annotations

from typing import Any, NamedTuple

from agentflow.config import FlowConfig
from agentflow.models.bus import PUBLISH, publication_id, published_topics
from agentflow.models.flow import State
from agentflow.names import BUS_FLOW


class Publication(NamedTuple):
    topic: str
    bus_event: str  # the event's id on the durable bus
    detail: str


def fan_out(config: FlowConfig | None, state: State) -> dict[str, Any]:
    """The fan-out flow's completed line: the topic and where it delivered (else nothing)."""
    if config is None or config.name != BUS_FLOW:
        return {}
    sent = state.data.get("deliveries")
    return {
        "deliveries": sent if isinstance(sent, list) else [],
        "topic": str(state.data.get("topic", "")),
    }


def publications(
    run_id: str, activity_id: str, config: FlowConfig | None, state: State
) -> list[Publication]:
    """What an agent's output published, one entry per topic, in the order it named them."""
    found = []
    for topic in published_topics(state.meta.get(PUBLISH)):
        subscribers = config.subscribers(topic) if config else []
        bus_event = publication_id(run_id, activity_id, topic)
        detail = (f"{topic} → {', '.join(subscribers) or 'no subscribers'} in this "
                  f"flow; on the bus as {bus_event}")  # fmt: skip
        found.append(Publication(topic, bus_event, detail))
    return found


def unpublished(state: State) -> State:
    """The state an agent passes on: its publish request is for the bus, not the next step."""
    return state.model_copy(update={"meta": {k: v for k, v in state.meta.items()
                                             if k != PUBLISH}})  # fmt: skip
