"""``agentflow serve``: the HTTP server (agentflow/serve/) on uvicorn.

It holds nothing of its own: run as many as you like behind a load balancer, each with the
same ``--config`` files and keys. Unauthenticated access is possible only with
``--insecure-local``, and only on 127.0.0.1.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agentflow.config import DEFAULT_CONFIG_FILE
from agentflow.errors import ConfigError
from agentflow.serve.auth import KEYS_ENV, load_keys
from agentflow.serve.context import load_context

LOCAL_HOST = "127.0.0.1"
DEFAULT_MAX_BODY = 1024 * 1024


def add_command(commands: Any) -> None:
    """Register ``serve`` on main.py's subparsers."""
    cmd = commands.add_parser("serve", help="CloudEvents in, a REST API and a web console")
    cmd.add_argument("--config", action="append", metavar="FILE",
                     help=f"a flow file; repeat for several (default: {DEFAULT_CONFIG_FILE} "
                     "if present)")  # fmt: skip
    cmd.add_argument("--host", default=LOCAL_HOST, help=f"address to listen on ({LOCAL_HOST})")
    cmd.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    cmd.add_argument(
        "--keys-file",
        metavar="FILE",
        help=f"API keys, TOML [keys.NAME] role/token (default: ${KEYS_ENV})",
    )
    cmd.add_argument(
        "--insecure-local",
        action="store_true",
        help=f"no API keys: everyone is admin; only with --host {LOCAL_HOST}",
    )
    cmd.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY,
        metavar="N",
        help=f"larger request bodies get 413 (default {DEFAULT_MAX_BODY})",
    )
    cmd.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from agentflow.serve.app import create_app

    if args.insecure_local and args.host != LOCAL_HOST:
        raise ConfigError(f"--insecure-local: only with --host {LOCAL_HOST}, not "
                          f"{args.host!r}; elsewhere give API keys (${KEYS_ENV} or "
                          "--keys-file)")  # fmt: skip
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port: 1 to 65535, not {args.port}")
    if args.max_body_bytes < 1024:
        raise ConfigError(f"--max-body-bytes: at least 1024, not {args.max_body_bytes}")
    keys = load_keys(args.keys_file)
    if not len(keys) and not args.insecure_local:
        raise ConfigError(f"serve: no API keys; set ${KEYS_ENV} (NAME:ROLE:TOKEN,...) or "
                          f"--keys-file, or run with --insecure-local on {LOCAL_HOST}")  # fmt: skip
    paths = args.config or ([DEFAULT_CONFIG_FILE] if Path(DEFAULT_CONFIG_FILE).is_file() else [])
    context = load_context(paths, keys, args.insecure_local, args.max_body_bytes)
    uvicorn.run(create_app(context), host=args.host, port=args.port, log_level="info")
    return 0
