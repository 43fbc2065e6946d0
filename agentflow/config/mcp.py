"""``[mcp]``, ``[[mcp.servers]]`` and ``[mcp.cache]``: MCP servers whose tools LLM agents may
call (AgenticGoKit's keys; agentflow/mcp.py is the client side).

Transports: ``stdio`` (a command), ``sse`` and ``http`` (streamable HTTP). AgenticGoKit's
``http_sse`` / ``http_streaming`` are the same two; its ``tcp``, ``websocket`` and ``docker``
are refused on an enabled server. Secrets in ``env`` and ``headers`` are ``${VAR}``
templates the worker expands (agentflow/config/llm.py ``expand_env``).
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from agentflow.config._base import Seconds, StrictModel

MCP_TRANSPORTS = ("stdio", "sse", "http")
TRANSPORT_ALIASES = {
    "http_sse": "sse",
    "http_streaming": "http",
    "streamable_http": "http",
    "streamable-http": "http",
    "streamablehttp": "http",
}
UNSUPPORTED_TRANSPORTS = ("tcp", "websocket", "docker")
# AgenticGoKit builds an HTTP server's address from host and port; these are the paths the
# MCP SDKs (and the Docker MCP gateway) serve the two transports on.
DEFAULT_PATHS = {"sse": "/sse", "http": "/mcp"}
# AgenticGoKit's own defaults (internal/mcp/factory.go).
DEFAULT_SCAN_PORTS = (8080, 8081, 8090, 8100, 3000, 3001)
MAX_MS = 24 * 3600 * 1000
Millis = Field(ge=1, le=MAX_MS)
_SECRET_HEADER = re.compile(r"authorization|token|key|secret|cookie", re.IGNORECASE)


def _transport(value: str | None) -> str | None:
    if value is None:
        return None
    name = TRANSPORT_ALIASES.get(value.lower(), value.lower())
    if name in MCP_TRANSPORTS or name in UNSUPPORTED_TRANSPORTS:
        return name
    allowed = ", ".join(MCP_TRANSPORTS + tuple(TRANSPORT_ALIASES))
    raise ValueError(f"unknown MCP transport {value!r}; allowed: {allowed}")


def unsupported_transport(name: str) -> str:
    return (
        f"MCP transport {name!r} is not supported yet; use stdio (command), sse or http "
        "(url, or host and port)"
    )


class MCPServerConfig(StrictModel):
    """``[[mcp.servers]]``: one MCP server."""

    name: str = Field(min_length=1, max_length=100)
    # stdio | sse | http (AgenticGoKit: http_sse, http_streaming); unset: [mcp] transport.
    type: str | None = Field(None, validation_alias=AliasChoices("type", "transport"))
    enabled: bool = True
    # stdio: the command (AgenticGoKit writes it whole: "npx pkg /path"; split like a shell)
    # and its extra arguments, environment and working directory.
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    # sse / http: the URL, or host and port (http://HOST:PORT/sse or /mcp).
    url: str | None = Field(None, validation_alias=AliasChoices("url", "endpoint"))
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    headers: dict[str, str] = Field(default_factory=dict)
    # Each tool call's timeout; unset: the agent's.
    timeout_seconds: Seconds | None = None

    _type = field_validator("type")(_transport)

    @field_validator("headers")
    @classmethod
    def _secret_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if _SECRET_HEADER.search(name) and "${" not in value:
                raise ValueError(
                    f"header {name!r} must take its secret from the environment, like "
                    '"Bearer ${MCP_TOKEN}": a value written in the file would be recorded in '
                    "workflow history"
                )
        return headers

    def argv(self) -> list[str]:
        """stdio: the program and its arguments."""
        return [*shlex.split(self.command or ""), *self.args]

    def address(self, transport: str) -> str | None:
        """sse / http: the server's URL."""
        if self.url:
            return self.url
        if self.host and self.port:
            return f"http://{self.host}:{self.port}{DEFAULT_PATHS.get(transport, '')}"
        return None


class MCPCacheConfig(StrictModel):
    """``[mcp.cache]``: tool results kept in the worker's memory for a TTL per tool, so an
    identical call (same tool, same arguments) within it does not reach the server."""

    enabled: bool = True
    default_ttl_ms: int = Field(300_000, ge=1, le=MAX_MS)
    # tool name -> TTL in ms; 0: never cache that tool.
    tool_ttls_ms: dict[str, int] = Field(default_factory=dict)
    # Bounds of the cache: entries and their total size (JSON bytes); least recently used
    # entries go first.
    max_keys: int = Field(10_000, gt=0, le=10_000_000)
    max_size_mb: int = Field(100, gt=0, le=64 * 1024)
    eviction_policy: Literal["lru"] = "lru"
    # How often expired entries are swept (they are never served after their TTL).
    cleanup_interval_ms: int = Field(60_000, ge=1, le=MAX_MS)
    backend: str = "memory"
    # Settings of AgenticGoKit's redis/file backends; unused by the memory backend.
    backend_config: dict[str, str] = Field(default_factory=dict)

    @field_validator("backend")
    @classmethod
    def _memory_only(cls, backend: str) -> str:
        if backend != "memory":
            raise ValueError(
                f"cache backend {backend!r} is not supported yet; use memory (each worker "
                "keeps its own cache)"
            )
        return backend

    @field_validator("eviction_policy", mode="before")
    @classmethod
    def _lru_only(cls, policy: Any) -> Any:
        if isinstance(policy, str) and policy != "lru":
            raise ValueError(f"eviction_policy {policy!r} is not supported yet; use lru")
        return policy

    @field_validator("tool_ttls_ms")
    @classmethod
    def _ttls(cls, ttls: dict[str, int]) -> dict[str, int]:
        for tool, ttl in ttls.items():
            if not 0 <= ttl <= MAX_MS:
                raise ValueError(f"{tool}: TTL must be between 0 and {MAX_MS} ms (got {ttl})")
        return ttls

    def ttl_ms(self, tool: str) -> int:
        """How long a result of ``tool`` is kept (0: not cached)."""
        if not self.enabled:
            return 0
        return self.tool_ttls_ms.get(tool, self.default_ttl_ms)


class MCPConfig(StrictModel):
    """``[mcp]``: the MCP servers of this flow, and how the worker talks to them."""

    enabled: bool = True
    # The transport of servers that do not name one.
    transport: str | None = None
    # Probe localhost's scan_ports for MCP servers (streamable HTTP at /mcp: AgenticGoKit
    # probes raw TCP, which is not supported) and add those that answer as servers.
    enable_discovery: bool = False
    discovery_timeout_ms: int = Field(10_000, ge=1, le=MAX_MS)
    scan_ports: list[int] = Field(default_factory=lambda: list(DEFAULT_SCAN_PORTS))
    # Starting (stdio) or connecting to a server, tried 1 + max_retries times.
    connection_timeout_ms: int = Field(
        30_000, ge=1, le=MAX_MS,
        validation_alias=AliasChoices("connection_timeout_ms", "connection_timeout"),
    )  # fmt: skip
    max_retries: int = Field(3, ge=0, le=100)
    retry_delay_ms: int = Field(
        1000, ge=1, le=MAX_MS, validation_alias=AliasChoices("retry_delay_ms", "retry_delay")
    )
    # Older cache switch and TTL; [mcp.cache] takes precedence.
    enable_caching: bool = False
    cache_timeout_ms: int = Field(
        300_000, ge=1, le=MAX_MS,
        validation_alias=AliasChoices("cache_timeout_ms", "cache_timeout"),
    )  # fmt: skip
    # Server sessions one worker keeps open at once.
    max_connections: int = Field(10, gt=0, le=1000)
    servers: list[MCPServerConfig] = Field(default_factory=list)
    cache: MCPCacheConfig | None = None

    _transport = field_validator("transport")(_transport)

    @field_validator("scan_ports")
    @classmethod
    def _ports(cls, ports: list[int]) -> list[int]:
        for port in ports:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is not between 1 and 65535")
        return ports

    @model_validator(mode="after")
    def _servers_usable(self) -> MCPConfig:
        names = [server.name for server in self.servers]
        for index, server in enumerate(self.servers):
            if names.index(server.name) != index:
                raise ValueError(f"servers[{index}]: server name {server.name!r} is used twice")
            if not (self.enabled and server.enabled):
                continue
            kind = self.transport_of(server)
            where = f"servers[{index}] ({server.name})"
            if kind is None:
                raise ValueError(f"{where}: set type = stdio, sse or http")
            if kind in UNSUPPORTED_TRANSPORTS:
                raise ValueError(f"{where}: {unsupported_transport(kind)}")
            if kind == "stdio" and not server.argv():
                raise ValueError(f'{where}: type = "stdio" needs command = "program args"')
            if kind in ("sse", "http") and server.address(kind) is None:
                raise ValueError(f'{where}: type = "{kind}" needs url (or host and port)')
        return self

    def transport_of(self, server: MCPServerConfig) -> str | None:
        return server.type or self.transport

    def active_servers(self) -> list[MCPServerConfig]:
        """The servers agents get tools from (none when [mcp] is disabled)."""
        return [server for server in self.servers if self.enabled and server.enabled]

    def discovery_candidates(self) -> list[MCPServerConfig]:
        """With enable_discovery: one streamable-HTTP server per scan port on localhost, to
        probe (within discovery_timeout_ms) and keep if it answers."""
        if not (self.enabled and self.enable_discovery):
            return []
        return [
            MCPServerConfig(name=f"discovered-{port}", type="http",
                            url=f"http://localhost:{port}/mcp")
            for port in self.scan_ports
        ]  # fmt: skip

    def result_cache(self) -> MCPCacheConfig | None:
        """The tool-result cache settings, None when caching is off."""
        if self.cache is not None:
            return self.cache if self.cache.enabled else None
        if self.enable_caching:
            return MCPCacheConfig(default_ttl_ms=self.cache_timeout_ms)
        return None
