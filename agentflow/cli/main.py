"""The ``agentflow`` command: run, validate, worker, dev, demo.

Exit codes: 0 success, 1 the flow (or a service) failed, 2 bad input (config, flags, JSON),
130 stopped by Ctrl-C, 141 the reader of the output went away (``agentflow trace | head``):
the command ends there, quietly, as a shell reports for a tool that SIGPIPE stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import select
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from agentflow.cli import approvals as approvals_cli
from agentflow.cli import bus as bus_cli
from agentflow.cli import cache as cache_cli
from agentflow.cli import codec_server, observe, replay, validate, watch
from agentflow.cli import dead_letters as dead_letters_cli
from agentflow.cli import emit as emit_cli
from agentflow.cli import memory as memory_cli
from agentflow.cli import patterns as patterns_cli
from agentflow.cli import serve as serve_cli
from agentflow.cli import sessions as sessions_cli
from agentflow.cli import usage as usage_cli
from agentflow.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    agents_flag,
    format_result,
    print_json,
    read_input,
    result_json,
)
from agentflow.cli.demo import run_demo
from agentflow.cli.devserver import serve
from agentflow.cli.watch import follow_run
from agentflow.client.runner import Runner
from agentflow.config import DEFAULT_CONFIG_FILE
from agentflow.demo import DEMO_CONFIG, DEMO_INPUT
from agentflow.errors import AgentflowError, ConfigError
from agentflow.limits import printable
from agentflow.models.flow import FlowFailedError
from agentflow.worker.devserver_process import DevServer
from agentflow.worker.serve import run_worker

# 128 + SIGPIPE: the status a shell shows for a command whose output pipe was closed.
EXIT_CLOSED_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        code = _command(args)
        sys.stdout.flush()  # output still in the buffer meets a closed pipe here
        return code
    except BrokenPipeError as err:  # every command's, here once
        if not _stdout_closed():
            _error(_service_message(err))  # a connection's pipe, not our output's
            return EXIT_FAILED
        # Whatever the buffer still holds goes to /dev/null, not to a second BrokenPipeError
        # (and its traceback) as the interpreter ends.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE


def _command(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except BrokenPipeError:
        raise  # a ConnectionError too, but maybe our output's: main tells them apart
    except ConfigError as err:
        _error(str(err))
        return EXIT_BAD_INPUT
    except WorkflowAlreadyStartedError as err:
        _error(
            f"--workflow-id: {err.workflow_id!r} is taken by a running {err.workflow_type} run; "
            "choose another id, or leave --workflow-id out for a generated one"
        )
        return EXIT_BAD_INPUT
    except (AgentflowError, RPCError, ConnectionError) as err:
        _error(_service_message(err))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _stdout_closed() -> bool:
    """Whether standard output is a pipe (or socket) that nobody reads any more."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a file
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _error(message: str) -> None:
    # printable: a message may quote input holding lone surrogates, which stderr cannot encode.
    print(f"agentflow: error: {printable(message)}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentflow", description="Durable multi-agent flows from agentflow.toml on Temporal."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="start a flow run and (by default) wait for it")
    _config_flag(run)
    run.add_argument("--input", default="{}", help="JSON object, @file.json, or @- for stdin")
    run.add_argument("--target", help="agent that receives the event (route mode)")
    run.add_argument("--session", help="session id carried by the event")
    run.add_argument("--workflow-id", help="Temporal workflow id (default: generated)")
    run.add_argument("--task-queue", help="override [temporal] task_queue")
    run.add_argument("--no-wait", action="store_true", help="print the ids and return")
    run.add_argument("--json", action="store_true", help="print exactly one JSON object")
    run.set_defaults(func=_run)

    validate.add_command(commands)

    worker = commands.add_parser("worker", help="run a worker for one or more flows")
    worker.add_argument(
        "--config",
        action="append",
        help=f"config file; repeat for several (default: {DEFAULT_CONFIG_FILE})",
    )
    worker.add_argument("--task-queue", help="override [temporal] task_queue")
    agents_flag(worker)
    worker.set_defaults(func=_worker)

    dev = commands.add_parser("dev", help="start the embedded Temporal dev server")
    dev.add_argument("--port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, help="default: --port + 1000, as Temporal's")
    dev.add_argument("--ip", default="127.0.0.1")
    dev.add_argument("--db", default=".agentflow/temporal.db", help="SQLite file of the server")
    dev.add_argument("--ui-codec-endpoint", metavar="URL",
                     help="the UI decodes payloads here (agentflow codec-server)")  # fmt: skip
    dev.set_defaults(func=_dev)

    demo = commands.add_parser("demo", help="dev server + worker + one run of a flow, then stop")
    demo.add_argument("--config", help=f"default: {DEFAULT_CONFIG_FILE} if present, else the "
                      "demo flow installed with agentflow")  # fmt: skip
    demo.add_argument("--input", help="default: the demo flow's article (agentflow/demo)")
    demo.add_argument("--port", type=int, default=7233)
    demo.add_argument("--ui-port", type=int, help="default: --port + 1000, as Temporal's")
    demo.set_defaults(func=_demo)

    observe.add_commands(commands)

    replay.add_command(commands)

    emit_cli.add_command(commands)
    sessions_cli.add_commands(commands)
    dead_letters_cli.add_commands(commands)

    bus_cli.add_commands(commands)
    patterns_cli.add_commands(commands)  # agentflow patterns: [patterns.NAME], open windows

    usage_cli.add_commands(commands)

    memory_cli.add_commands(commands)

    cache_cli.add_commands(commands)

    approvals_cli.add_commands(commands)

    watch.add_command(commands)

    codec_server.add_command(commands)

    serve_cli.add_command(commands)
    return parser


def _config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG_FILE, help="path to agentflow.toml")


def _worker(args: argparse.Namespace) -> int:
    asyncio.run(run_worker(args.config or [DEFAULT_CONFIG_FILE], args.task_queue, args.agents))
    return EXIT_OK


def _dev(args: argparse.Namespace) -> int:
    server = DevServer(args.port, args.ui_port, args.db, args.ip,
                       ui_codec_endpoint=args.ui_codec_endpoint)  # fmt: skip
    return serve(server)


def _run(args: argparse.Namespace) -> int:
    data = read_input(args.input)
    runner = Runner.from_config(args.config, task_queue=args.task_queue)
    return asyncio.run(_run_flow(runner, data, args))


async def _run_flow(runner: Any, data: dict[str, Any], args: argparse.Namespace) -> int:
    handle = await runner.start(
        data, target=args.target, session_id=args.session, workflow_id=args.workflow_id
    )
    if args.no_wait:
        if args.json:
            print_json({"workflow_id": handle.workflow_id, "run_id": handle.run_id,
                         "status": "running", "mode": runner.config.mode})  # fmt: skip
        else:
            print(f"started {handle.workflow_id} (run {handle.run_id})\n{handle.ui_url}")
        return EXIT_OK
    if not args.json:
        print(f"started {handle.workflow_id}\n  {handle.ui_url}", flush=True)
    if not await runner.has_workers():
        print(
            f"agentflow: warning: no worker polls task queue {runner.task_queue!r}; the run "
            "waits until one starts (agentflow worker --config ...)",
            file=sys.stderr,
            flush=True,
        )
    try:
        if not args.json and sys.stdout.isatty():  # the live stream only for a person watching
            waiting = asyncio.ensure_future(handle.result())
            await follow_run(await runner.client(), handle.workflow_id, waiting)
            result = await waiting
        else:
            result = await handle.result()
    except FlowFailedError as err:
        result = err.result
    if args.json:
        print_json(result_json(handle.workflow_id, handle.run_id, result))
    else:
        print(format_result(result, workflow_id=handle.workflow_id))
    # "handled": an [error_routing] agent took the event after an agent failed for good.
    return EXIT_OK if result.status in ("completed", "handled") else EXIT_FAILED


def _service_message(err: BaseException) -> str:
    # Only a failed connection suggests a missing server: "Blob data size exceeds limit" from a
    # running server is not helped by starting another one.
    unreachable = isinstance(err, ConnectionError) or (
        isinstance(err, RPCError) and err.status == RPCStatusCode.UNAVAILABLE
    )
    if unreachable:
        return f"{err} (is Temporal running? start one with `agentflow dev`)"
    return str(err)


def _demo(args: argparse.Namespace) -> int:
    config = args.config or (
        DEFAULT_CONFIG_FILE if Path(DEFAULT_CONFIG_FILE).is_file() else str(DEMO_CONFIG)
    )
    data = read_input(args.input or f"@{DEMO_INPUT}")
    return run_demo(config, data, args.port, args.ui_port)


def entrypoint() -> None:
    """The console script: ``main`` and then an immediate exit.

    Why ``os._exit``: the Temporal SDK's Rust runtime keeps threads that may touch the GIL
    while CPython finalises, which sporadically aborts a short-lived client process with
    "PyGILState_Release" (temporalio/sdk-python issue 300). Everything is flushed first;
    there is nothing left to clean up that the OS does not.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entrypoint()
