"""Route mode's declarative routes (``[[orchestration.routes]]``): what the workflow asks the
``decide_route`` activity and what it answers. Pure: workflows import this module.

The CEL expressions are evaluated in that (local) activity, never in workflow code: the
workflow records the decision, so a replay reads it back instead of evaluating again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agentflow.config.orchestration import Route
from agentflow.models.bus import PUBLISHER, TOPIC
from agentflow.models.flow import FlowInput

# Runs that record a route decision (only flows with routes): older histories replay as before.
ROUTES_PATCH = "cel-routes"
# Where a failed decision is recorded in the run's results (never an agent's name: a dot).
ROUTES_STEP = "orchestration.routes"


class RouteRequest(BaseModel):
    """The routes, in order, and the event they decide on."""

    routes: list[Route]
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    topic: str = ""
    event_id: str = ""
    source: str = ""


class RouteDecision(BaseModel):
    """The agent of the first route that holds (None: none held and there is no default), or
    why a ``when`` could not be evaluated on the event (then nothing runs)."""

    agent: str | None = None
    index: int | None = None  # which route
    error: str | None = None


def route_request(flow_input: FlowInput) -> RouteRequest:
    """The routes' variables: the run's input state as ``data``, the event's metadata, its
    topic (a bus delivery's), id and source (the publisher, else the source agent)."""
    event = flow_input.event
    return RouteRequest(
        routes=flow_input.config.orchestration.routes, data=flow_input.state.data,
        metadata=event.metadata, topic=event.metadata.get(TOPIC, ""), event_id=event.id,
        source=event.metadata.get(PUBLISHER) or event.source_agent or "",
    )  # fmt: skip
