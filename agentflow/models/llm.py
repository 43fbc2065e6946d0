"""What travels between an LLM agent's model steps and its tool calls (workflows/_llm_loop.py).

An LLM agent with tools runs as a chain of activities: a model step (the agent's own
activity) that either answers or asks for tool calls, then one ``run_tool`` activity per call,
then the next model step with the results, and so on. Each is recorded in history as it
completes, so a worker that dies after a tool call ran neither runs that call again nor the
model request before it. The conversation so far travels as pydantic-ai's message history
(JSON), the calls and their results as the models below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentflow.config.mcp import MCPConfig, MCPServerConfig
from agentflow.models.stream import StreamItem
from agentflow.models.usage import Usage

# Where a tool lives: a Python function by import path, or an MCP server by name.
ToolSource = Literal["python", "mcp"]


class ToolCall(BaseModel):
    """One tool call the model asked for."""

    id: str  # the model's tool_call_id, which its result must answer
    name: str  # the tool's name, as the model saw it
    args: dict[str, Any] = Field(default_factory=dict)
    source: ToolSource = "python"
    # "package.module:function" (python) or the [[mcp.servers]] name (mcp).
    target: str = ""


class ToolReturn(BaseModel):
    """A tool call's result, as the model gets it."""

    id: str
    name: str
    content: Any = None
    # Set instead of content when the call's arguments did not fit the tool: the model is
    # told why and may call again (pydantic-ai's retry prompt).
    retry: str | None = None


class LLMTurn(BaseModel):
    """The conversation of one LLM agent between its model steps.

    In an AgentOutput: the history and the tool calls the model asks for. In the next step's
    AgentInput: the same history and the calls' results.
    """

    messages: list[dict[str, Any]] = Field(default_factory=list)
    calls: list[ToolCall] = Field(default_factory=list)
    returns: list[ToolReturn] = Field(default_factory=list)
    step: int = 0  # model steps taken before this one


@dataclass
class LLMReply:
    """A model step's outcome (activities/llm.py): the state update of an answer, or the
    tool calls the model asks for, and what the step used."""

    usage: Usage
    update: dict[str, Any] | None = None
    turn: LLMTurn | None = None
    # The reply's text when it ended before its first token batch went out (tokens.py).
    tokens: StreamItem | None = None


class ToolInput(BaseModel):
    """Input of the ``run_tool`` activity."""

    agent: str
    flow: str = ""
    call: ToolCall
    # An MCP tool's server and the flow's [mcp] settings (its cache, timeouts), from the
    # run's config snapshot (secrets stay ${VAR} templates).
    server: MCPServerConfig | None = None
    mcp: MCPConfig | None = None
    timeout_seconds: float | None = None


class ToolOutput(BaseModel):
    """Output of the ``run_tool`` activity."""

    result: ToolReturn
