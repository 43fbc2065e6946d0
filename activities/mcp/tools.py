"""The tools of MCP servers (``[mcp]``, ``[[mcp.servers]]``), for LLM agents.

``list_tools(server)`` gives a server's tools as pydantic-ai ``ToolDefinition``s (for the
model request); ``call_tool(server, name, args)`` runs one call and returns what the model
is told, as JSON-safe data (an activity result). ``flow_tools(settings)`` gathers the tools
of every enabled (and discovered) server of a flow. Connections go through pydantic-ai's
``MCPToolset`` (stdio, SSE, streamable HTTP) and stay open for later calls of the same
worker (agentflow/_mcp_sessions.py); ``[mcp.cache]`` answers repeated calls from memory
(agentflow/_mcp_cache.py).

Errors: a server that cannot be used raises ``MCPServerError`` (with its stderr tail when it
did not start; ``retryable`` says whether Temporal should try again); an error the tool itself
reports raises pydantic-ai's ``ModelRetry``, so the model sees it and may correct its call.
``application_error`` turns an ``MCPServerError`` into the activity failure naming the agent.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic_ai.exceptions import ModelRetry
from pydantic_ai.messages import BinaryContent
from pydantic_ai.tools import ToolDefinition
from temporalio.exceptions import ApplicationError

from agentflow.activities.mcp._cache import ResultCache
from agentflow.activities.mcp._errors import MCPServerError, describe, identity, reason
from agentflow.config.mcp import MCPConfig, MCPServerConfig

if TYPE_CHECKING:
    from agentflow.activities.mcp._sessions import Pool, Session

__all__ = [
    "MCPServerError",
    "application_error",
    "call_tool",
    "close_servers",
    "flow_tools",
    "list_tools",
]

# What a binary tool result (an image, audio) becomes: the model gets its type and size, and
# history is spared megabytes of base64 (Temporal payloads are capped at 2 MB).
BINARY_INLINE_LIMIT = 4096

_cache = ResultCache()
_discovered: dict[str, list[MCPServerConfig]] = {}
SESSIONS_MODULE = "agentflow.activities.mcp._sessions"


async def pool() -> Pool:
    """This event loop's open sessions. The MCP clients take seconds to import, so the first
    use imports them in a thread: the activity's heartbeats go on meanwhile."""
    module = sys.modules.get(SESSIONS_MODULE)
    if module is None:
        module = await asyncio.to_thread(importlib.import_module, SESSIONS_MODULE)
    sessions: Pool = module.pool()
    return sessions


async def list_tools(
    server: MCPServerConfig, settings: MCPConfig | None = None
) -> list[ToolDefinition]:
    """The tools ``server`` offers; ``metadata["mcp_server"]`` names the server."""
    settings = settings or MCPConfig()

    async def listing(session: Session) -> Any:
        return await session.toolset.list_tools()

    tools = await _using(server, settings, "listing its tools", listing)
    return [
        ToolDefinition(
            name=tool.name,
            description=tool.description,
            parameters_json_schema=dict(tool.input_schema),
            metadata={"mcp_server": server.name},
        )
        for tool in tools
    ]


async def call_tool(
    server: MCPServerConfig,
    name: str,
    args: dict[str, Any],
    settings: MCPConfig | None = None,
    *,
    timeout_seconds: float | None = None,
) -> Any:
    """Call tool ``name`` of ``server``; ``[mcp.cache]`` may answer instead of the server.
    The timeout is the server's ``timeout_seconds``, else ``timeout_seconds``."""
    settings = settings or MCPConfig()
    policy = settings.result_cache()
    key = ResultCache.key(identity(server, settings), name, args)
    if policy is not None:
        hit, value = _cache.get(key)
        if hit:
            return value
    timeout = server.timeout_seconds or timeout_seconds

    async def calling(session: Session) -> Any:
        try:
            return await asyncio.wait_for(session.toolset.direct_call_tool(name, args), timeout)
        except asyncio.TimeoutError:
            raise MCPServerError(
                f"{describe(server, settings)}: tool {name!r} did not answer within {timeout} s",
                retryable=True,
            ) from None

    value = json_safe(await _using(server, settings, f"calling tool {name!r}", calling))
    if policy is not None:
        _cache.put(key, value, policy.ttl_ms(name), policy)
    return value


async def flow_tools(settings: MCPConfig) -> list[tuple[MCPServerConfig, ToolDefinition]]:
    """Every tool of the flow's enabled servers (and of those ``enable_discovery`` found),
    with its server. Two servers offering one tool name is an error naming both."""
    found: dict[str, tuple[MCPServerConfig, ToolDefinition]] = {}
    for server in [*settings.active_servers(), *await discovered(settings)]:
        for tool in await list_tools(server, settings):
            if tool.name in found:
                raise MCPServerError(
                    f"MCP servers {found[tool.name][0].name!r} and {server.name!r} both offer "
                    f"a tool named {tool.name!r}; disable one of them ([[mcp.servers]] "
                    "enabled = false)",
                    retryable=False,
                )
            found[tool.name] = (server, tool)
    return list(found.values())


async def discovered(settings: MCPConfig) -> list[MCPServerConfig]:
    """``enable_discovery``: the servers on localhost's ``scan_ports`` that answer MCP over
    streamable HTTP within ``discovery_timeout_ms`` (probed once per worker process)."""
    candidates = settings.discovery_candidates()
    if not candidates:
        return []
    key = ",".join(str(port) for port in settings.scan_ports)
    if key not in _discovered:
        probe = settings.model_copy(update={"max_retries": 0})
        timeout = settings.discovery_timeout_ms / 1000

        async def answers(server: MCPServerConfig) -> bool:
            try:
                await asyncio.wait_for(list_tools(server, probe), timeout)
            except (MCPServerError, asyncio.TimeoutError):
                return False
            return True

        found = await asyncio.gather(*(answers(server) for server in candidates))
        _discovered[key] = [server for server, ok in zip(candidates, found, strict=True) if ok]
    return _discovered[key]


async def close_servers() -> None:
    """Close this event loop's server sessions (stdio servers exit); for worker shutdown."""
    if SESSIONS_MODULE in sys.modules:
        await (await pool()).close_all()


def application_error(err: MCPServerError, agent: str) -> ApplicationError:
    """The activity failure for ``err``, naming the agent whose tool call it was."""
    return ApplicationError(
        f"agent {agent!r}: {err}", type="MCPServerError", non_retryable=not err.retryable
    )


def clear_cache() -> None:
    """Forget every cached tool result of this process."""
    _cache.clear()


def json_safe(value: Any) -> Any:
    """A tool result as JSON data: binary parts become a short description."""
    if isinstance(value, BinaryContent):
        data = value.data
        described: dict[str, Any] = {"media_type": value.media_type, "bytes": len(data)}
        if len(data) <= BINARY_INLINE_LIMIT:
            described["base64"] = base64.b64encode(data).decode()
        return described
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


T = TypeVar("T")


async def _using(
    server: MCPServerConfig,
    settings: MCPConfig,
    doing: str,
    work: Callable[[Session], Awaitable[T]],
) -> T:
    """Run ``work`` on the server's open session; a failure of the session itself (the
    server died, the connection dropped) closes it, so that a retry opens a new one."""
    sessions = await pool()
    async with sessions.use(server, settings) as session:
        try:
            return await work(session)
        except (MCPServerError, ModelRetry):
            raise
        except Exception as err:
            tail = session.stderr_tail()
            failed = err
    await sessions.discard(server, settings)
    raise MCPServerError(
        f"{describe(server, settings)} failed while {doing}: {reason(failed)}"
        + (f"; its stderr ends with:\n{tail}" if tail else ""),
        retryable=True,
    )
