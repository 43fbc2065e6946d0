"""The tools of MCP servers (``[mcp]``), for LLM agents: sessions kept open per worker, a
result cache, and the errors that name the server."""
