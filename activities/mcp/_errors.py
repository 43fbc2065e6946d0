"""How agentflow/mcp.py names MCP servers and their failures (no MCP client imports here:
activities catch ``MCPServerError`` without loading the clients)."""

from __future__ import annotations

from agentflow.config.mcp import MCPConfig, MCPServerConfig
from agentflow.errors import AgentflowError


class MCPServerError(AgentflowError):
    """An MCP server that cannot be used: it did not start, is unreachable, or died.
    ``retryable`` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def describe(server: MCPServerConfig, settings: MCPConfig) -> str:
    """How the server is reached, for messages: ``MCP server 'name' (stdio: node x.js)``."""
    kind = settings.transport_of(server) or "?"
    target = " ".join(server.argv()) if kind == "stdio" else server.address(kind)
    return f"MCP server {server.name!r} ({kind}: {target})"


def identity(server: MCPServerConfig, settings: MCPConfig) -> str:
    """What makes two server configs the same server (the sessions' and the cache's key)."""
    return f"{settings.transport_of(server)}|{server.model_dump_json()}"


def reason(err: BaseException) -> str:
    """The innermost message of an error (anyio wraps them in exception groups)."""
    while getattr(err, "exceptions", None):  # an exception group (a builtin from 3.11)
        err = err.exceptions[0]  # type: ignore[attr-defined]
    text = str(err) or type(err).__name__
    return text if type(err).__name__ in text else f"{type(err).__name__}: {text}"
