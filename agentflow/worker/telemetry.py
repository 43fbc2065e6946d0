"""The worker's side of telemetry: a span, metrics and log lines around every agent call
(``AgentCallInterceptor``, always on; see AgentflowPlugin). The providers and exporters are set
up by ``agentflow.client.telemetry``, for clients and workers alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from agentflow.activities.agent import agent_request
from agentflow.activities.metrics import measured_agent
from agentflow.models.flow import AgentInput
from agentflow.names import agent_of


class AgentCallInterceptor(Interceptor):
    """Worker interceptor: a span, metrics and log lines around every agent call (activity
    type ``agent:NAME``, or ``run_agent`` in runs from before it)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _AgentCall(next)


class _AgentCall(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        request, input = _agent_call(input)
        if request is None:  # not an agent call: run_local_agents measures its own agents
            return await super().execute_activity(input)
        with measured_agent(request.agent, request.flow, activity.info().attempt):
            return await super().execute_activity(input)


def _agent_call(input: ExecuteActivityInput) -> tuple[AgentInput | None, ExecuteActivityInput]:
    """The call's AgentInput when it is an agent call, and the input to pass on.

    An ``agent:NAME`` call reaches its dynamic activity as raw payloads: they are decoded
    here, and the model is handed on in their place, so a state of megabytes is decoded once.
    """
    first = input.args[0] if input.args else None
    if isinstance(first, AgentInput):  # run_agent
        return first, input
    if agent_of(activity.info().activity_type) is None or not isinstance(first, Sequence):
        return None, input
    request = agent_request(first)
    return request, dataclasses.replace(input, args=[[request]])
