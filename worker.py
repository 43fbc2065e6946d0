"""Entry point of an agentflow worker: ``python worker.py [--config agentflow.toml]``."""

from __future__ import annotations

import sys

from agentflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))
