"""The research example's MCP server: a small library of notes, served over stdio with the
official ``mcp`` SDK. agentflow.toml starts it with ``python -m examples.llm.library`` (the
worker's own Python); any MCP client can use it the same way.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

NOTES = {
    "temporal": [
        "Temporal records every step of a workflow in its history and replays it after a crash.",
        "Activities are retried by Temporal with the retry policy the workflow gives them.",
    ],
    "mcp": [
        "The Model Context Protocol lets a model call tools that a separate server provides.",
        "MCP servers speak JSON-RPC over stdio, SSE or streamable HTTP.",
    ],
    "durable": [
        "Durable execution means a program's progress survives process and machine failures.",
    ],
}

library = MCPServer("agentflow-example-library")


@library.tool()
def search_notes(topic: str) -> list[str]:
    """The library's notes on a topic (one word, like "temporal" or "mcp")."""
    return NOTES.get(topic.strip().lower(), [])


@library.tool()
def topics() -> list[str]:
    """The topics the library has notes on."""
    return sorted(NOTES)


if __name__ == "__main__":
    library.run("stdio")
