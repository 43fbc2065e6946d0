"""Open MCP server sessions, reused by every tool call of one worker process.

Starting a stdio server (a process) or opening an HTTP session costs 0.1-2 s, so a session
stays open and later calls reuse it. Each session is held open by its own task: the MCP
clients run anyio task groups, which must be left by the task that entered them, while the
activities that use a session come and go. Sessions belong to the event loop that opened
them (a new loop gets its own). ``[mcp] max_connections`` bounds how many stay open: the
least recently used idle one is closed to make room.

A server's stderr goes to a temporary file, so that a server that does not start, or that
dies, is reported with the last lines it wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastmcp.client import Client
from fastmcp.client.transports import (
    ClientTransport,
    SSETransport,
    StdioTransport,
    StreamableHttpTransport,
)
from pydantic_ai.mcp import MCPToolset

from agentflow.activities.mcp._errors import MCPServerError, describe, identity, reason
from agentflow.config.llm import MissingVariable, expand_env
from agentflow.config.mcp import MCPConfig, MCPServerConfig, unsupported_transport

PYTHON_NAMES = ("python", "python3")
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 2000


@dataclass
class Session:
    """One open server session; ``toolset`` is pydantic-ai's view of it."""

    server: MCPServerConfig
    toolset: MCPToolset[None]
    stderr: Path | None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    holder: asyncio.Task[None] | None = None
    users: int = 0
    used: float = 0.0

    def stderr_tail(self) -> str:
        return stderr_tail(self.stderr)


def stderr_tail(path: Path | None) -> str:
    """The last lines a server wrote to stderr ("" when none)."""
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").strip()
    tail = "\n".join(text.splitlines()[-STDERR_TAIL_LINES:])
    return tail[-STDERR_TAIL_CHARS:]


def _expanded(values: dict[str, str], server: MCPServerConfig, key: str) -> dict[str, str]:
    try:
        return {name: expand_env(value, os.environ) for name, value in values.items()}
    except MissingVariable as err:
        raise MCPServerError(
            f"MCP server {server.name!r}: environment variable {err.name!r} ({key}) is not "
            "set on this worker",
            retryable=False,
        ) from None


def _transport(server: MCPServerConfig, settings: MCPConfig) -> tuple[ClientTransport, Path | None]:
    kind = settings.transport_of(server)
    if kind == "stdio":
        program, *args = server.argv()
        if program in PYTHON_NAMES:
            # The worker's own interpreter, so a server from the project's environment
            # starts with the same packages whichever "python" is first on PATH.
            program = sys.executable
        fd, name = tempfile.mkstemp(prefix=f"agentflow-mcp-{server.name}-", suffix=".log")
        os.close(fd)
        env = _expanded(server.env, server, "env")
        stdio = StdioTransport(
            program, args, env=env or None, cwd=server.cwd, keep_alive=False, log_file=Path(name)
        )
        return stdio, Path(name)
    url = server.address(kind or "")
    if kind in ("sse", "http") and url:
        headers = _expanded(server.headers, server, "headers") or None
        if kind == "sse":
            return SSETransport(url, headers=headers), None
        return StreamableHttpTransport(url, headers=headers), None
    raise MCPServerError(
        f"MCP server {server.name!r}: {unsupported_transport(kind or 'none')}", retryable=False
    )


class Pool:
    """The sessions of one event loop."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        # One lock per server: opening a slow server does not hold up calls to the others.
        self.locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def use(self, server: MCPServerConfig, settings: MCPConfig) -> AsyncIterator[Session]:
        """The open session of ``server`` (opened, or reopened after it died, on demand)."""
        key = identity(server, settings)
        async with self.locks.setdefault(key, asyncio.Lock()):
            session = self.sessions.get(key)
            if session is not None and (session.holder is None or session.holder.done()):
                await self._close(key)
                session = None
            if session is None:
                await self._make_room(settings.max_connections)
                session = await _open_retrying(server, settings)
                self.sessions[key] = session
            session.users += 1
        loop = asyncio.get_running_loop()
        try:
            yield session
        finally:
            session.users -= 1
            session.used = loop.time()

    async def discard(self, server: MCPServerConfig, settings: MCPConfig) -> None:
        """Close the session after it failed, so the next call opens a fresh one."""
        key = identity(server, settings)
        async with self.locks.setdefault(key, asyncio.Lock()):
            await self._close(key)

    async def close_all(self) -> None:
        for key in list(self.sessions):
            async with self.locks.setdefault(key, asyncio.Lock()):
                await self._close(key)

    async def _make_room(self, limit: int) -> None:
        idle = sorted((s.used, key) for key, s in self.sessions.items() if s.users == 0)
        while len(self.sessions) >= limit and idle:
            await self._close(idle.pop(0)[1])

    async def _close(self, key: str) -> None:
        session = self.sessions.pop(key, None)
        if session is None:
            return
        session.stop.set()
        if session.holder is not None:
            with contextlib.suppress(Exception):
                await session.holder
        if session.stderr is not None:
            session.stderr.unlink(missing_ok=True)


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pool] = weakref.WeakKeyDictionary()


def pool() -> Pool:
    """The running event loop's pool."""
    loop = asyncio.get_running_loop()
    if loop not in _pools:
        _pools[loop] = Pool()
    return _pools[loop]


async def _open_retrying(server: MCPServerConfig, settings: MCPConfig) -> Session:
    # [mcp] max_retries / retry_delay_ms: AgenticGoKit's connection attempts. A missing
    # variable or a transport we lack cannot get better by trying again.
    for attempt in range(settings.max_retries + 1):
        try:
            return await _open(server, settings)
        except MCPServerError as err:
            if not err.retryable or attempt == settings.max_retries:
                # An HTTP server may be up later (Temporal retries); a stdio server that
                # failed every attempt has a problem of its own, which its stderr names.
                err.retryable = err.retryable and settings.transport_of(server) != "stdio"
                raise
        await asyncio.sleep(settings.retry_delay_ms / 1000)
    raise AssertionError("unreachable")


async def _open(server: MCPServerConfig, settings: MCPConfig) -> Session:
    transport, stderr = _transport(server, settings)
    timeout = settings.connection_timeout_ms / 1000
    client: Client[Any] = Client(transport, init_timeout=timeout)
    session = Session(server, MCPToolset(client, id=server.name), stderr)
    opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def hold() -> None:
        try:
            async with session.toolset:
                opened.set_result(None)
                await session.stop.wait()
        except BaseException as err:
            if not opened.done():
                opened.set_exception(err)
            elif not isinstance(err, Exception):
                raise

    session.holder = asyncio.create_task(hold(), name=f"mcp session {server.name}")
    try:
        await asyncio.wait_for(asyncio.shield(opened), timeout + 5)
    except BaseException as err:
        # Also when the activity is cancelled while waiting: the half-open server must not
        # outlive it.
        session.stop.set()
        session.holder.cancel()
        with contextlib.suppress(BaseException):
            await session.holder
        tail = stderr_tail(stderr)
        if stderr is not None:
            stderr.unlink(missing_ok=True)
        if not isinstance(err, Exception):
            raise
        # A command that is not there fails the same way every time; anything else (a
        # server still starting, a port not yet open) may pass on a later attempt.
        missing = isinstance(err, FileNotFoundError) or "No such file" in str(err)
        raise MCPServerError(
            f"{describe(server, settings)} did not start: {reason(err)}"
            + (f"; its stderr ends with:\n{tail}" if tail else ""),
            retryable=not missing,
        ) from None
    return session
