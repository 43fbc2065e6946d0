"""MCP servers for the tests: one built with the official ``mcp`` SDK (this file), and the
reference server ``@modelcontextprotocol/server-everything`` that ``make test`` installs from
npm into tests/mcp/node_modules (``npm ci``; never downloaded while tests run).

``python tests/mcp_server.py stdio`` serves over stdio; ``python tests/mcp_server.py sse PORT``
and ``... http PORT`` serve SSE and streamable HTTP on 127.0.0.1. ``stamp`` counts the calls
that reach this process, so a test can prove that a cached call never did; ``calls`` reads
the count (never cache it). ``serving`` runs an HTTP server as a child process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

HERE = Path(__file__).resolve().parent
EVERYTHING = HERE / "mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
# Preloaded into node so server-everything's HTTP modes listen on 127.0.0.1 only.
LOOPBACK = HERE / "mcp/loopback.cjs"


def everything(mode: str = "stdio") -> list[str]:
    """The command that runs server-everything (stdio, sse or streamableHttp)."""
    if not EVERYTHING.exists():
        raise RuntimeError(
            f"{EVERYTHING} is missing: run `make test` (its setup step runs `npm ci` in "
            "tests/mcp), or `npm ci --prefix tests/mcp`"
        )
    node = shutil.which("node") or "node"
    return [node, "--require", str(LOOPBACK), str(EVERYTHING), mode]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(argv: list[str], port: int, log: Path, timeout: float = 30.0) -> Iterator[str]:
    """Run ``argv`` (a server listening on 127.0.0.1:``port``; PORT is set for it) until the
    block ends; yields ``http://127.0.0.1:PORT``."""
    env = {**os.environ, "PORT": str(port)}
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + timeout
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv} did not listen on {port}:\n{log.read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


FACTS = {
    "temporal": "Temporal records every step of a workflow in its history.",
    "mcp": "MCP lets a model call tools that a separate server provides.",
}


def build() -> MCPServer:
    """The server (built on demand: building one sets up the process's logging)."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("agentflow-test-tools")
    reached: Counter[str] = Counter()

    @server.tool()
    def lookup(topic: str) -> str:
        """One fact about a topic."""
        return FACTS.get(topic.lower(), f"nothing is known about {topic}")

    @server.tool()
    def stamp(key: str) -> dict[str, object]:
        """Count this call: how many calls with this key reached the server."""
        reached[key] += 1
        return {"key": key, "reached": reached[key]}

    @server.tool()
    def calls(key: str) -> int:
        """How many ``stamp`` calls with this key reached the server."""
        return reached[key]

    @server.tool()
    def refuse(reason: str) -> str:
        """Always fails, as a tool that reports an error to the model does."""
        raise ValueError(f"refused: {reason}")

    return server


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    server = build()
    if mode == "stdio":
        server.run("stdio")
    elif mode == "sse":
        server.run("sse", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
