"""``python -m agentflow.cli``: the ``agentflow`` command."""

from agentflow.cli.main import entrypoint

entrypoint()
