"""``agentflow usage RUN | --session S [--json]``: what a run's or a session's LLM agents used
(input and output tokens, model requests, tool calls), read from what Temporal recorded: the
run's result (a failed run's partial result) or the session's counts."""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from agentflow.cli._common import connected, connection_flag, find_run, print_json
from agentflow.cli.sessions import session_view
from agentflow.config import load_config
from agentflow.errors import AgentflowError, ConfigError
from agentflow.models.flow import FlowResult
from agentflow.models.usage import Usage
from agentflow.models.usage import total as summed

COLUMNS = ("requests", "tool_calls", "input_tokens", "output_tokens")


def add_commands(commands: Any) -> None:
    cmd = commands.add_parser(
        "usage", help="tokens, model requests and tool calls of a run's or a session's LLM agents"
    )
    cmd.add_argument("run", nargs="?", help="workflow id or run id of a finished run")
    cmd.add_argument("--session", help="a session of the flow in --config instead")
    cmd.add_argument("--json", action="store_true", help="print exactly one JSON object")
    connection_flag(cmd)
    cmd.set_defaults(func=_usage)


def _usage(args: argparse.Namespace) -> int:
    if bool(args.run) == bool(args.session):
        raise ConfigError("usage: give a workflow/run id, or --session ID (not both)")
    if args.session:
        flow = load_config(args.config or "agentflow.toml", check_handlers=False).name
        return connected(args, lambda client, args: _session_usage(client, args, flow))
    return connected(args, _run_usage)


async def _run_usage(client: Client, args: argparse.Namespace) -> int:
    workflow_id, _ = await find_run(client, args.run)
    handle = client.get_workflow_handle(workflow_id, result_type=FlowResult)
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        raise AgentflowError(
            f"run {workflow_id!r} is still running: its usage is summed when it ends "
            f"(agentflow status {workflow_id})"
        )
    try:
        result = await handle.result()
    except WorkflowFailureError as err:
        result = _partial(err)
        if result is None:
            why = f"run {workflow_id!r} ended without a result: {err.cause}"
            raise AgentflowError(why) from None
    agents = [(r.agent, r.usage) for r in result.results if r.usage]
    hits = [r for r in result.results if r.cached]  # result cache hits: nothing spent
    _print(args.json, {"workflow_id": workflow_id, "status": result.status},
           result.usage or Usage(), agents,
           saved=(len(hits), summed(r.saved for r in hits)) if hits else None)  # fmt: skip
    return 0


async def _session_usage(client: Client, args: argparse.Namespace, flow: str) -> int:
    view = await session_view(client, flow, args.session)
    counts = view.counts
    _print(args.json, {"flow": flow, "session_id": args.session, "events": counts.processed
                       + counts.dead_lettered}, counts.usage or Usage(), [])  # fmt: skip
    return 0


def _partial(err: WorkflowFailureError) -> FlowResult | None:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == "FlowFailed" and cause.details:
        return FlowResult.model_validate(cause.details[0])
    return None


def _print(
    as_json: bool, head: dict[str, Any], total: Usage, agents: list[tuple[str, Usage | None]],
    saved: tuple[int, Usage] | None = None,
) -> None:  # fmt: skip
    """``saved``: the result cache's hits and what their cached calls had used."""
    if as_json:
        body = {**head, "usage": _row(total),
                "agents": [{"agent": name, **_row(usage)} for name, usage in agents]}  # fmt: skip
        if saved is not None:
            body["cache"] = {"hits": saved[0], "saved": _row(saved[1])}
        print_json(body)
        return
    print(", ".join(f"{key} {value}" for key, value in head.items()))
    rows = [(name, _row(usage)) for name, usage in agents] + [("total", _row(total))]
    width = max(len(name) for name, _ in rows)
    print(f"{'':{width}}  " + "  ".join(f"{column.replace('_', ' '):>13}" for column in COLUMNS))
    for name, row in rows:
        print(f"{name:{width}}  " + "  ".join(f"{row[column]:>13}" for column in COLUMNS))
    if saved is not None:
        hits, usage = saved
        print(f"result cache: {hits} hit(s) saved {usage.total_tokens} tokens ("
              f"{usage.input_tokens} in, {usage.output_tokens} out), {usage.requests} "
              "model request(s)")  # fmt: skip


def _row(usage: Usage | None) -> dict[str, int]:
    usage = usage or Usage()
    return {**usage.model_dump(), "total_tokens": usage.total_tokens}
