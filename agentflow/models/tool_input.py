"""The ``run_tool`` activity's input when the agent has ``agent_error`` hooks.

A tool call that fails for good fails its agent, so the agent's ``agent_error`` hooks run
then, inside the ``run_tool`` activity (no extra activity, no server round trip): the call
carries what the hooks are called with, the event and the state the agent had. Agents without
such hooks send none of it, so their tool calls stay small. A subclass of ``ToolInput`` (which
agentflow.models imports, so it cannot import them back); older calls decode into it as is.
"""

from __future__ import annotations

from pydantic import Field

from agentflow.models.flow import Event, State
from agentflow.models.llm import ToolInput


class ToolCallInput(ToolInput):
    """``ToolInput`` and, for the agent's ``agent_error`` hooks, their paths, event and state."""

    agent_error: list[str] = Field(default_factory=list)
    event: Event | None = None
    state: State | None = None
