"""``agentflow validate [FILE]``: check a flow file without running it, and list the agents
that code must register (``--agents MODULE`` checks them too)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agentflow.cli._common import EXIT_OK, agents_flag
from agentflow.config import DEFAULT_CONFIG_FILE
from agentflow.config.code_checks import (
    describe_unbound,
    unbound_agents,
    unbound_message,
    unrunnable,
)
from agentflow.config.registered import REGISTRY
from agentflow.errors import ConfigError
from agentflow.worker.serve import load_with_code


def add_command(commands: Any) -> None:
    validate = commands.add_parser("validate", help="check a config file without running it")
    validate.add_argument("file", nargs="?", metavar="FILE", help="the config file (or --config)")
    validate.add_argument("--config", default=DEFAULT_CONFIG_FILE, help="path to agentflow.toml")
    agents_flag(validate)
    validate.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    path = args.file or args.config
    ((config, _),) = load_with_code([path], args.agents)
    count = len(config.enabled_agents())
    unbound = unbound_agents(config, REGISTRY.agents())
    if args.agents or config.agent_flow.agent_modules:  # the whole set: nothing may be missing
        if unbound:
            raise ConfigError(unbound_message(config, unbound, path))
        if problem := unrunnable(config):
            raise ConfigError(f"{path}: {problem}")
    print(
        f"{path}: ok: flow {config.name!r}, mode {config.mode}, "
        f"{count} enabled agent{'' if count == 1 else 's'}"
    )
    if unrunnable(config):
        print(f"{path}: {config.mode} mode with no agent listed: every agent code registers "
              "takes part (check with --agents MODULE)")  # fmt: skip
    if unbound:
        print(f"{path}: agents that code must register: {describe_unbound(config, unbound)} "
              "(check that modules register them with --agents MODULE)")  # fmt: skip
    if any(config.is_llm_agent(agent) for agent in config.enabled_agents()):
        from agentflow.activities.llm_notices import flow_notices  # imports the providers' SDKs

        for line in flow_notices(config):
            print(f"agentflow: warning: {line}", file=sys.stderr)
    return EXIT_OK
