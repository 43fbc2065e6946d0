"""The ``decide_route`` activity: route mode's ``[[orchestration.routes]]``, evaluated on an
event (CEL, agentflow/config/expressions.py). A local activity of the route workflow; an
expression that fails on the event is answered as an error, never raised, so the workflow
fails the run once (the event is dead-lettered, reason "expression failed") instead of
retrying it."""

from __future__ import annotations

from temporalio import activity

from agentflow.config.expressions import ExpressionFailed, evaluate, event_variables
from agentflow.models.routes import RouteDecision, RouteRequest
from agentflow.names import ROUTE_ACTIVITY


@activity.defn(name=ROUTE_ACTIVITY)
async def decide_route(request: RouteRequest) -> RouteDecision:
    """The first route whose ``when`` holds (a route without ``when`` always does)."""
    variables = event_variables(
        request.data, request.metadata, request.topic, request.event_id, request.source
    )
    for index, route in enumerate(request.routes):
        try:
            if route.when is None or evaluate(route.when, variables):
                return RouteDecision(agent=route.agent, index=index)
        except ExpressionFailed as err:
            return RouteDecision(error=f"orchestration.routes[{index}].when {err}", index=index)
    return RouteDecision()
