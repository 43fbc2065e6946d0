"""Tool-loop lines of a trace: an LLM agent that calls tools runs as several activities
(workflows/_llm_loop.py): its first model step (the agent's own activity, id ``N-AGENT``), a
``run_tool`` activity per call (``N-AGENT.STEP.I-TOOL``) and a model step after each round of
calls (``N-AGENT.STEP``). The trace shows them as one agent: started once, a ``tool`` line per
model request for tools and per tool result, completed once."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from agentflow.models.flow import AgentOutput
from agentflow.models.llm import ToolInput, ToolOutput

# "3-research.1.2-search" -> ("3-research", "search"); "3-research.1" -> "3-research".
_TOOL_ID = re.compile(r"(.+)\.\d+\.\d+-(.+)")
_STEP_ID = re.compile(r"(.+)\.\d+")


class ToolCallLine(NamedTuple):
    agent: str
    root: str  # the agent call's own activity id
    detail: str


def asked_for(output: AgentOutput) -> str | None:
    """What a model step asked for, when it asked for tools rather than answering."""
    if output.turn is None or not output.turn.calls:
        return None
    names = ", ".join(call.name for call in output.turn.calls)
    return f"model step {output.turn.step} asked for {names}"


def model_step_root(activity_id: str) -> str:
    """The agent call a later model step belongs to (its own id for the first step)."""
    match = _STEP_ID.fullmatch(activity_id)
    return match.group(1) if match else activity_id


def tool_scheduled(activity_id: str, request: ToolInput) -> ToolCallLine:
    match = _TOOL_ID.fullmatch(activity_id)
    root = match.group(1) if match else activity_id
    where = request.call.target or request.call.source
    return ToolCallLine(request.agent, root, f"{request.call.name} ({where}) called")


def tool_returned(output: ToolOutput) -> str:
    name = output.result.name
    if output.result.retry is not None:
        return f"{name}: arguments did not fit the tool; the model is told why"
    return f"{name} returned {_short(output.result.content)}"


def _short(content: Any, limit: int = 80) -> str:
    text = content if isinstance(content, str) else repr(content)
    return text if len(text) <= limit else text[: limit - 1] + "…"
