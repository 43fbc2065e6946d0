"""Entry point of an agentflow worker: ``python worker.py [--config agentflow.toml]``."""

from __future__ import annotations

import sys

from agentflow.cli.main import entrypoint

if __name__ == "__main__":
    sys.argv[1:1] = ["worker"]
    entrypoint()
