"""``agentflow cache clear [--agent A] [--config F]``: delete a flow's cached agent results
(agents with ``cache = { ttl = ... }``), from the store its workers use (agentflow/client/
result_cache.py). It needs no server, only the flow file; run it from the workers' working
directory when the store's path is relative."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from agentflow.cli._common import EXIT_OK
from agentflow.client.result_cache import clear_cache
from agentflow.config import DEFAULT_CONFIG_FILE, load_config
from agentflow.errors import ConfigError


def add_commands(commands: Any) -> None:
    """Register ``cache clear`` on main.py's subparsers."""
    group = commands.add_parser("cache", help="the result cache of agents with cache = {...}")
    sub = group.add_subparsers(dest="cache_command", required=True, metavar="COMMAND")
    cmd = sub.add_parser("clear", help="delete the flow's cached agent results")
    cmd.add_argument("--agent", help="only this agent's results")
    cmd.add_argument("--config", default=DEFAULT_CONFIG_FILE, help="path to agentflow.toml")
    cmd.set_defaults(func=_clear)


def _clear(args: argparse.Namespace) -> int:
    config = load_config(args.config, check_handlers=False)
    if args.agent is not None and args.agent not in config.agents:
        raise ConfigError(
            f"cache clear: --agent {args.agent!r} is no agent of {args.config}; its agents: "
            f"{', '.join(config.agents) or '(none)'}"
        )
    deleted = asyncio.run(clear_cache(config, args.agent))
    whose = f"agent {args.agent!r}" if args.agent else f"flow {config.name!r}"
    print(f"cleared {deleted} cached result(s) of {whose}")
    return EXIT_OK
