"""The ``agentflow`` command: one module per command group, calling the same library
functions a Python user calls (``agentflow.client``, ``agentflow.inspect``)."""

from agentflow.cli.main import entrypoint, main

__all__ = ["entrypoint", "main"]
