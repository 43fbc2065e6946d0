"""The durable tool loop of an LLM agent: model step, tool calls, model step, ... answer.

An LLM agent's first model step is its ordinary agent activity. When the model asks for tools
instead of answering, that activity returns the calls and the conversation so far; this loop
runs each call as its own ``run_tool`` activity (in parallel, ids naming the agent, step and
tool) and then the next model step, with the results, as another agent activity. Every one is
recorded in history when it completes: a worker killed after a tool call ran does not run
that call again, nor the model request before it.

Agents without tools never get here (their first step answers), so runs recorded before this
loop existed replay unchanged. Deterministic code only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig
    from agentflow.config.mcp import MCPConfig, MCPServerConfig
    from agentflow.config.resolve import resolve_llm
    from agentflow.models.flow import AgentInput, AgentOutput, FlowInput
    from agentflow.models.llm import LLMTurn, ToolCall, ToolOutput, ToolReturn
    from agentflow.models.tool_input import ToolCallInput
    from agentflow.models.usage import BUDGET_ERROR, TokenBudget, Usage
    from agentflow.names import RUN_TOOL

# Model steps one agent call may take (each but the last asks for tools) before it fails.
MAX_MODEL_STEPS = 10
# A crashed worker's tool call is retried after this long without a heartbeat.
TOOL_HEARTBEAT_SECONDS = 10.0

# Schedules the next model step: (request with the turn, activity id) -> its output.
ModelStep = Callable[[AgentInput, str], Awaitable[AgentOutput]]


def llm_request(config: FlowConfig, agent: str) -> dict[str, Any]:
    """The AgentInput fields of an LLM agent: its model settings (``${VAR}`` templates stay
    unexpanded) and the MCP servers whose tools it may call (None: none)."""
    if not config.is_llm_agent(agent):
        return {}
    return {"model": resolve_llm(config, agent), "mcp": _agent_mcp(config, agent)}


def _agent_mcp(config: FlowConfig, agent: str) -> MCPConfig | None:
    named = config.agents[agent].mcp_servers
    servers = [server for server in config.mcp.active_servers()
               if named is None or server.name in named]  # fmt: skip
    # Discovered servers are "all servers" too; an agent that names its servers gets those.
    discovery = config.mcp.enable_discovery and named is None
    if not servers and not (discovery and config.mcp.enabled):
        return None
    return config.mcp.model_copy(update={"servers": servers, "enable_discovery": discovery})


def run_usage(flow_input: FlowInput) -> Usage:
    """What a run used before this workflow run (a loop's earlier runs), else nothing."""
    carried = flow_input.loop.usage if flow_input.loop is not None else None
    return carried or Usage()


def token_budget(config: FlowConfig, spent: Usage) -> TokenBudget | None:
    """The run's token budget ([orchestration] max_tokens_per_run; None: no cap)."""
    limit = config.orchestration.max_tokens_per_run
    return None if limit is None else TokenBudget(limit, spent.total_tokens)


async def finish_llm_agent(
    request: AgentInput,
    first: AgentOutput,
    model_step: ModelStep,
    *,
    activity_id: str,
    policy: RetryPolicy,
    budget: TokenBudget | None = None,
) -> AgentOutput:
    """``first`` when it is an answer; else run its tool calls and the model steps after
    them until the model answers. A step that takes the run over ``budget`` fails it."""
    usage = first.usage or Usage()
    _check_budget(request.agent, usage, budget)
    output = first
    while output.turn is not None and output.turn.calls:
        turn = output.turn
        if turn.step >= MAX_MODEL_STEPS:
            raise ApplicationError(
                f"agent {request.agent!r} still asked for tools after {turn.step} model steps "
                f"(at most {MAX_MODEL_STEPS}); its last calls: "
                f"{', '.join(call.name for call in turn.calls)}",
                {"usage": usage.model_dump()},
                type="TooManyToolSteps",
                non_retryable=True,
            )
        calls = [
            _run_tool(request, output, call, f"{activity_id}.{turn.step}.{index}-{call.name}",
                      policy)
            for index, call in enumerate(turn.calls, start=1)
        ]  # fmt: skip
        returns = await asyncio.gather(*calls)
        answered = LLMTurn(messages=turn.messages, returns=list(returns), step=turn.step)
        following = request.model_copy(update={"state": output.state, "turn": answered})
        output = await model_step(following, f"{activity_id}.{turn.step}")
        usage = usage + (output.usage or Usage()) + Usage(tool_calls=len(returns))
        _check_budget(request.agent, usage, budget)
    if output is first:
        return first
    return output.model_copy(update={"usage": usage, "started_at": first.started_at})


def _check_budget(agent: str, usage: Usage, budget: TokenBudget | None) -> None:
    if budget is not None and (why := budget.exceeded_by(agent, usage)):
        raise ApplicationError(
            why,
            {"usage": usage.model_dump()},
            type=BUDGET_ERROR,
            non_retryable=True,
        )


async def _run_tool(
    request: AgentInput, asking: AgentOutput, call: ToolCall, activity_id: str, policy: RetryPolicy
) -> ToolReturn:
    """One tool call as its own activity, retried with the agent's policy. The agent's
    ``agent_error`` hooks go along (with its event and state): a call that fails for good
    runs them there (agentflow/llm_tool_input.py)."""
    seconds = request.spec.timeout_seconds
    server = _server(request, call) if call.source == "mcp" else None
    hooks = request.hooks.agent_error if request.hooks else []
    tool_input = ToolCallInput(
        agent=request.agent, flow=request.flow, call=call, server=server,
        mcp=request.mcp if server else None, timeout_seconds=seconds, agent_error=hooks,
        event=request.event if hooks else None, state=asking.state if hooks else None,
    )  # fmt: skip
    output: ToolOutput = await workflow.execute_activity(
        RUN_TOOL,
        tool_input,
        activity_id=activity_id,
        result_type=ToolOutput,
        start_to_close_timeout=timedelta(seconds=seconds),
        heartbeat_timeout=timedelta(seconds=min(TOOL_HEARTBEAT_SECONDS, seconds)),
        retry_policy=policy,
        summary=f"{request.agent}: {call.name}",
    )
    return output.result


def _server(request: AgentInput, call: ToolCall) -> MCPServerConfig:
    settings = request.mcp
    servers = [*settings.servers, *settings.discovery_candidates()] if settings else []
    for server in servers:
        if server.name == call.target:
            return server
    raise ApplicationError(
        f"agent {request.agent!r}: the model called {call.name!r} of MCP server "
        f"{call.target!r}, which this run's config does not have",
        type="ToolError",
        non_retryable=True,
    )
