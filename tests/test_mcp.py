"""agentflow/mcp.py against real MCP servers: the reference ``server-everything`` (from npm,
installed by ``make test``) over stdio and streamable HTTP, and our ``mcp``-SDK server
(tests/mcp_server.py) over SSE and stdio. Each server starts once for the module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.exceptions import ModelRetry

from agentflow.activities.mcp import tools as mcp
from agentflow.activities.mcp._cache import ResultCache
from agentflow.activities.mcp._errors import identity
from agentflow.activities.mcp._sessions import pool
from agentflow.config.mcp import MCPCacheConfig, MCPConfig, MCPServerConfig
from tests.mcp_server import everything, free_port, serving

SDK_SERVER = str(Path(__file__).resolve().parent / "mcp_server.py")


def settings(*servers: MCPServerConfig, **keys: Any) -> MCPConfig:
    # No connection retries: a server that fails, fails at once.
    return MCPConfig(servers=list(servers), **{"max_retries": 0, **keys})


def stdio(name: str, argv: list[str], **keys: Any) -> MCPServerConfig:
    return MCPServerConfig(name=name, type="stdio", command=argv[0], args=argv[1:], **keys)


@pytest.fixture(scope="module")
def everything_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MCPServerConfig]:
    log = tmp_path_factory.mktemp("mcp") / "everything-http.log"
    with serving(everything("streamableHttp"), free_port(), log) as root:
        yield MCPServerConfig(name="everything-http", type="http", url=f"{root}/mcp")


@pytest.fixture(scope="module")
def sdk_sse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MCPServerConfig]:
    port = free_port()
    log = tmp_path_factory.mktemp("mcp") / "sdk-sse.log"
    with serving([sys.executable, SDK_SERVER, "sse", str(port)], port, log) as root:
        yield MCPServerConfig(name="sdk-sse", type="sse", url=f"{root}/sse")


async def test_server_everything_over_stdio_and_http(everything_http: MCPServerConfig) -> None:
    local = stdio("everything", everything("stdio"))
    for server in (local, everything_http):
        config = settings(server)
        tools = {tool.name: tool for tool in await mcp.list_tools(server, config)}
        assert {"echo", "get-sum"} <= set(tools), server.name
        assert tools["echo"].parameters_json_schema["required"] == ["message"]
        assert tools["echo"].metadata == {"mcp_server": server.name}
        assert await mcp.call_tool(server, "echo", {"message": "hi"}, config) == "Echo: hi"
        summed = await mcp.call_tool(server, "get-sum", {"a": 2, "b": 3}, config)
        assert summed == "The sum of 2 and 3 is 5."
    # Both sessions stayed open for later calls: listing again starts no new process.
    keys = [identity(server, settings(server)) for server in (local, everything_http)]
    sessions = [pool().sessions[key] for key in keys]
    await mcp.list_tools(local, settings(local))
    assert [pool().sessions[key] for key in keys] == sessions
    # A flow's tools come from all its servers; two offering one tool name is refused.
    with pytest.raises(mcp.MCPServerError, match="'everything' and 'everything-http' both offer"):
        await mcp.flow_tools(settings(local, everything_http))
    tools = await mcp.flow_tools(settings(local))
    assert {"echo", "get-sum"} <= {tool.name for server, tool in tools if server == local}
    # enable_discovery: of the scanned ports, the one where an MCP server answers is added.
    port = int(str(everything_http.url).rsplit(":", 1)[1].split("/")[0])
    scan = settings(enable_discovery=True, scan_ports=[free_port(), port])
    found = {server.name for server, _ in await mcp.flow_tools(scan)}
    assert found == {f"discovered-{port}"}
    await mcp.close_servers()
    assert not set(keys) & set(pool().sessions)


async def test_sdk_server_over_sse_with_a_result_cache(sdk_sse: MCPServerConfig) -> None:
    cache = MCPCacheConfig(default_ttl_ms=60_000, tool_ttls_ms={"calls": 0})
    cached = settings(sdk_sse, cache=cache)
    first = await mcp.call_tool(sdk_sse, "stamp", {"key": "a"}, cached)
    again = await mcp.call_tool(sdk_sse, "stamp", {"key": "a"}, cached)
    assert first == again == {"key": "a", "reached": 1}
    # The second call never reached the server (``calls`` is not cached: TTL 0).
    assert await mcp.call_tool(sdk_sse, "calls", {"key": "a"}, cached) == 1
    # Other arguments, or no [mcp.cache], reach the server.
    assert await mcp.call_tool(sdk_sse, "stamp", {"key": "b"}, cached) == {"key": "b", "reached": 1}
    plain = settings(sdk_sse)
    assert await mcp.call_tool(sdk_sse, "stamp", {"key": "a"}, plain) == {"key": "a", "reached": 2}
    # A tool that reports an error tells the model (pydantic-ai's ModelRetry), not Temporal.
    with pytest.raises(ModelRetry, match="refuse"):
        await mcp.call_tool(sdk_sse, "refuse", {"reason": "no"}, plain)
    await mcp.close_servers()


async def test_servers_that_cannot_be_used_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    crash = "import sys; sys.stderr.write('boom: SEARCH_API_KEY is not set\\n'); sys.exit(3)"
    broken = stdio("broken", [sys.executable, "-c", crash])
    with pytest.raises(mcp.MCPServerError) as failed:
        await mcp.list_tools(broken, settings(broken, max_retries=1, retry_delay_ms=1))
    message = str(failed.value)
    assert message.startswith("MCP server 'broken' (stdio: ") and "did not start" in message
    assert message.endswith("stderr ends with:\nboom: SEARCH_API_KEY is not set")
    assert not failed.value.retryable
    error = mcp.application_error(failed.value, "researcher")
    assert error.non_retryable and error.message.startswith("agent 'researcher': MCP server")

    missing = stdio("missing", ["no-such-mcp-server-binary"])
    with pytest.raises(mcp.MCPServerError, match="no-such-mcp-server-binary") as failed:
        await mcp.list_tools(missing, settings(missing))
    assert not failed.value.retryable

    monkeypatch.delenv("AGENTFLOW_TEST_MCP_TOKEN", raising=False)
    needs_var = stdio(
        "keyed", [sys.executable, SDK_SERVER], env={"TOKEN": "${AGENTFLOW_TEST_MCP_TOKEN}"}
    )
    with pytest.raises(mcp.MCPServerError, match="'AGENTFLOW_TEST_MCP_TOKEN' \\(env\\) is not set"):
        await mcp.list_tools(needs_var, settings(needs_var))

    # Nothing listens there: an HTTP server may come back, so Temporal retries.
    gone = MCPServerConfig(name="gone", type="http", url=f"http://127.0.0.1:{free_port()}/mcp")
    with pytest.raises(mcp.MCPServerError, match=r"'gone' \(http: http://127.0.0.1") as failed:
        await mcp.list_tools(gone, settings(gone, connection_timeout_ms=2000))
    assert failed.value.retryable

    # tcp and websocket are refused when the config loads; one built around that still fails.
    tcp = MCPServerConfig.model_construct(name="docker", type="tcp", host="localhost", port=1)
    with pytest.raises(mcp.MCPServerError, match="'tcp' is not supported yet; use stdio"):
        await mcp.list_tools(tcp, MCPConfig.model_construct(servers=[tcp], max_retries=0))
    # None of them left a session behind.
    names = {session.server.name for session in pool().sessions.values()}
    assert not names & {"broken", "missing", "keyed", "gone", "docker"}


def test_result_cache_ttl_and_bounds() -> None:
    now = [0.0]
    cache = ResultCache(clock=lambda: now[0])
    policy = MCPCacheConfig(default_ttl_ms=1000, max_keys=2, cleanup_interval_ms=10_000)
    key = ResultCache.key("srv", "search", {"q": "x", "n": 1})
    assert key == ResultCache.key("srv", "search", {"n": 1, "q": "x"})
    cache.put(key, "result", policy.ttl_ms("search"), policy)
    now[0] = 0.999
    assert cache.get(key) == (True, "result")
    now[0] = 1.0
    assert cache.get(key) == (False, None)  # expired at its TTL
    for name in "abc":
        cache.put(name, name, 1000, policy)
    assert len(cache) == 2 and cache.get("a") == (False, None)  # least recently used went
    cache.put("big", "x" * 100, 1000, MCPCacheConfig(max_size_mb=1))
    cache.put("never", 1, 0, policy)
    assert cache.get("never") == (False, None)
    assert MCPCacheConfig(enabled=False).ttl_ms("search") == 0
