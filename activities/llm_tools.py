"""An LLM agent's tools: what the model is told about them, and the ``run_tool`` activity that
runs one call.

Python tools (``tools = ["package.module:function"]``) are typed by their signature (and
docstring) the way pydantic-ai types a function tool; MCP tools come from the agent's
``[[mcp.servers]]`` (agentflow/mcp.py). The model never runs a tool itself: the tools are
marked external, so a model step ends with the calls it asks for, and the workflow runs each
as its own ``run_tool`` activity (workflows/_llm_loop.py).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

import pydantic_core
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from agentflow.activities.heartbeat import heartbeating
from agentflow.activities.hooks import run_agent_error
from agentflow.activities.registry import AgentRegistry
from agentflow.errors import FatalError
from agentflow.limits import shorten
from agentflow.models.flow import AgentInput
from agentflow.models.llm import ToolCall, ToolInput, ToolOutput, ToolReturn, ToolSource
from agentflow.models.tool_input import ToolCallInput
from agentflow.names import RUN_TOOL

if TYPE_CHECKING:  # pydantic-ai is imported when a tool is first used: workers start faster
    from pydantic_ai import Tool
    from pydantic_ai.tools import ToolDefinition

# A tool's result travels in a Temporal payload (2 MB at most) and then in the conversation.
MAX_RESULT_BYTES = 1024 * 1024
# Where each tool the model may call lives: its name -> ("python", path) or ("mcp", server).
Sources = dict[str, tuple[ToolSource, str]]


@functools.lru_cache(maxsize=1024)
def _python_tool(path: str, function: Callable[..., Any]) -> Tool[Any]:
    """The pydantic-ai tool of a function (its schema is built once per worker)."""
    from pydantic_ai import Tool

    return Tool(function, takes_ctx=False)


async def tool_definitions(
    request: AgentInput, registry: AgentRegistry
) -> tuple[list[ToolDefinition], Sources]:
    """The tools the agent's model may call, and where each lives."""
    agent = request.agent
    definitions: list[ToolDefinition] = []
    sources: Sources = {}

    def add(definition: ToolDefinition, source: tuple[ToolSource, str]) -> None:
        if definition.name in sources:
            raise _fatal(
                agent,
                f"two tools are named {definition.name!r} ({sources[definition.name][1]} and "
                f"{source[1]}); rename one, or leave one out of tools / mcp_servers",
            )
        definitions.append(definition)
        sources[definition.name] = source

    for path in request.spec.tools:
        function = registry.get(path)
        if function is None:
            raise _not_registered(agent, path)
        add(_python_tool(path, function).tool_def, ("python", path))
    if request.mcp is not None:
        from agentflow.activities.mcp import tools as mcp

        try:
            for server, definition in await mcp.flow_tools(request.mcp):
                add(definition, ("mcp", server.name))
        except mcp.MCPServerError as err:
            raise mcp.application_error(err, agent) from None
    return definitions, sources


def tool_call(name: str, call_id: str, args: dict[str, Any], sources: Sources) -> ToolCall:
    source, target = sources.get(name, ("python", ""))
    return ToolCall(id=call_id, name=name, args=args, source=source, target=target)


class ToolActivities:
    """``run_tool``: one tool call, with Temporal owning its retries."""

    def __init__(self, registry: AgentRegistry | None, executor: Executor | None = None) -> None:
        self._registry = registry if registry is not None else AgentRegistry()
        self._executor = executor

    @activity.defn(name=RUN_TOOL)
    async def run_tool(self, request: ToolCallInput) -> ToolOutput:
        try:
            return await self._run(request)
        except ApplicationError as failure:
            # A call that fails for good fails its agent: the agent's agent_error hooks run
            # now, once, here (the agent's own activity never sees this failure).
            event, state = request.event, request.state
            if request.agent_error and event and state and _for_good(failure, activity.info()):
                await run_agent_error(
                    self._registry, self._executor, request.agent_error, failure,
                    agent=request.agent, event=event, state=state,
                    attempt=activity.info().attempt, flow=request.flow,
                )  # fmt: skip
            raise

    async def _run(self, request: ToolInput) -> ToolOutput:
        from pydantic_ai.exceptions import ModelRetry

        call = request.call
        try:
            # Heartbeats, so a dead worker's call is retried elsewhere within its timeout.
            async with heartbeating(activity.info().heartbeat_timeout):
                if call.source == "mcp":
                    content = await self._mcp(request)
                else:
                    content = await self._python(request)
        except ModelRetry as retry:
            # The tool says the call was wrong: the model is told why and may call again.
            return ToolOutput(result=ToolReturn(id=call.id, name=call.name, retry=str(retry)))
        except FatalError as err:
            raise _fatal(request.agent, f"tool {call.name!r} failed: {err}") from err
        except ApplicationError:
            raise
        except Exception as err:
            # Retried like a failing handler (the agent's retry policy), named for the UI.
            raise ApplicationError(
                shorten(f"agent {request.agent!r}: tool {call.name!r} raised "
                        f"{type(err).__name__}: {err}"),
                type=type(err).__name__,
            ) from err  # fmt: skip
        try:
            content = pydantic_core.to_jsonable_python(content)
        except pydantic_core.PydanticSerializationError as err:
            raise _fatal(
                request.agent, f"tool {call.name!r} returned what is not JSON data: {err}"
            ) from None
        output = ToolOutput(result=ToolReturn(id=call.id, name=call.name, content=content))
        if (size := len(pydantic_core.to_json(output))) > MAX_RESULT_BYTES:
            raise _fatal(
                request.agent,
                f"tool {call.name!r} returned {size / 1e6:.1f} MB; a result is recorded in "
                "history (Temporal payloads are limited to 2 MB): return a reference instead",
            )
        return output

    async def _python(self, request: ToolInput) -> Any:
        call = request.call
        function = self._registry.get(call.target)
        if function is None:
            raise _not_registered(request.agent, call.target)
        schema = _python_tool(call.target, function).function_schema
        try:
            args = schema.validator.validate_python(call.args)
        except ValidationError as err:
            from pydantic_ai.exceptions import ModelRetry

            raise ModelRetry(f"the arguments do not fit tool {call.name!r}: {err}") from None
        if inspect.iscoroutinefunction(function):
            return await function(**args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, **args))

    async def _mcp(self, request: ToolInput) -> Any:
        from agentflow.activities.mcp import tools as mcp

        call = request.call
        if request.server is None:
            raise _fatal(request.agent, f"MCP tool {call.name!r} came without its server")
        try:
            return await mcp.call_tool(request.server, call.name, call.args, request.mcp,
                                       timeout_seconds=request.timeout_seconds)  # fmt: skip
        except mcp.MCPServerError as err:
            raise mcp.application_error(err, request.agent) from None


def _for_good(failure: ApplicationError, info: activity.Info) -> bool:
    """Whether Temporal will not try this call again (its agent then fails)."""
    policy = info.retry_policy
    if failure.non_retryable or policy is None:
        return True
    if failure.type in (policy.non_retryable_error_types or ()):
        return True
    return 0 < policy.maximum_attempts <= info.attempt


def _not_registered(agent: str, path: str) -> ApplicationError:
    return _fatal(
        agent,
        f"tool {path!r} is not registered on this worker; start the worker with the "
        "agentflow.toml that names it (--config)",
    )


def _fatal(agent: str, why: str) -> ApplicationError:
    return ApplicationError(shorten(f"agent {agent!r}: {why}"), type="ToolError",
                            non_retryable=True)  # fmt: skip
