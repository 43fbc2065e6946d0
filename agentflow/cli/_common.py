"""What every ``agentflow`` command shares: exit codes, ``--input``, ``--json`` output, links to
the Temporal UI, not-found errors, the ``--config`` flag of commands that only connect, and
running a command against Temporal. The rules every command follows:

Exit codes: 0 success, 1 the flow (or a service) failed, 2 bad input (config, flags, JSON).
Bad input is one line ``agentflow: error: <what is wrong and what is allowed>``, exit 2, found
before connecting wherever it can be.

Not found: a run, session or dead letter that Temporal does not hold is one line
``agentflow: error: no <thing> <id> in namespace <namespace>`` (a session of a known flow:
``no session <id> of flow <flow> in namespace <namespace>``; a hint may follow in parentheses)
and exit 1, in every command (``NotFoundError``; ``find_run``, ``require_workflow``,
``find_session``). A filter that matches nothing in something that exists (``trace --agent
x``, ``list --flow y``) is not an error: it prints nothing and exits 0. A failure message on
the terminal is cut to one short line (``limits.terminal_line``); --json and the trace have
all of it.

``--json``: a command about one thing (run, emit, publish, status, session show, dead-letters
show, usage, approve, reject, replay) prints exactly one JSON object on one line; a command that
lists things (list, session list, dead-letters list, pending, topics, trace, watch) prints JSON
Lines: one object per line, nothing at all for an empty list. Every object goes through
``print_json``, which rounds durations: ``*_ms`` to 0.1 ms, ``*_seconds`` to 0.001 s (floats
like ``1.3190000000000002`` are noise, not precision).

Links: every link to the Temporal UI is made by ``link``, which honours ``[temporal] ui_url``
of the flow's config (``connected`` and ``flow_runner`` keep it on ``args.ui_base``).
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from agentflow import limits, names
from agentflow.client import visibility
from agentflow.client.connection import connect_flow, ui_url
from agentflow.client.runner import Runner
from agentflow.config import DEFAULT_CONFIG_FILE, FlowConfig, load_config
from agentflow.errors import AgentflowError, ConfigError
from agentflow.inspect.trace.read import resolve_workflow_id
from agentflow.models.flow import FlowResult

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def read_input(value: str) -> dict[str, Any]:
    """``--input``: a JSON object, ``@file.json``, or ``@-`` for standard input.

    Whatever it holds reaches Temporal unchanged or is refused here, with its key path: no
    NaN or Infinity (they would become null), no lone surrogates, no nesting Temporal's JSON
    decoder cannot take.
    """
    source = "the value"
    text = value
    if value.startswith("@"):
        source = "standard input" if value == "@-" else value[1:]
        text = _read_text(value[1:], source)
    try:
        data = limits.loads(text)
    except RecursionError:
        raise ConfigError(
            f"--input: {source} is nested too deeply (at most {limits.MAX_DATA_DEPTH} levels)"
        ) from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"--input: {source} is not valid JSON: {err}") from None
    except ValueError:  # Python reads integers of up to 4,300 digits
        raise ConfigError(f"--input: {source} holds an integer too long to read") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--input: expected a JSON object, got {type(data).__name__}")
    if problem := limits.data_problem(data):
        raise ConfigError(f"--input: {problem}")
    return data


def _read_text(path: str, source: str) -> str:
    """The text of ``@file`` (``@-``: standard input), which must be UTF-8."""
    try:
        if path == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            raw: bytes | str = sys.stdin.read() if stdin is None else stdin.read()
        else:
            raw = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"--input: cannot read {source}: {err.strerror}") from None
    if isinstance(raw, str):
        return raw
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(f"--input: {source} is UTF-16 text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")  # a byte order mark some editors write is fine
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"--input: {source} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
            f"{err.start}); save it as UTF-8"
        ) from None


def result_json(workflow_id: str, run_id: str, result: FlowResult) -> dict[str, Any]:
    body: dict[str, Any] = {
        "workflow_id": workflow_id,
        "run_id": run_id,
        "status": result.status,
        "mode": result.mode,
        "state": result.state.model_dump(mode="json"),
        "results": [r.model_dump(mode="json") for r in result.results],
        "error": result.error,
    }
    for extra in ("iterations", "stop_reason", "compensations"):
        if getattr(result, extra) is not None:
            body[extra] = result.model_dump(mode="json", include={extra})[extra]
    if result.path:
        body["path"] = result.path
    if result.usage:  # LLM agents ran: their tokens, requests and tool calls, summed
        body["usage"] = result.usage.model_dump()
    return body


def format_result(
    result: FlowResult, show_state: bool = True, workflow_id: str | None = None
) -> str:
    lines = [f"flow {result.flow!r} ({result.mode}): {result.status}"]
    if result.error:
        lines.append(f"error: {_short(result.error, workflow_id)}")
    if result.stop_reason:
        lines.append(f"loop: {result.iterations} iterations, stopped by {result.stop_reason}")
    if result.path:
        lines.append("path: " + " → ".join(result.path))
    width = max((len(r.agent) for r in result.results), default=5)
    for r in result.results:
        mark = "✓" if r.status == "completed" else "✗"
        changed = f"  changed: {', '.join(r.changed_keys)}" if r.changed_keys else ""
        failure = f"  {_short(r.error, workflow_id)}" if r.error else ""
        lines.append(
            f"  {mark} {r.agent:<{width}}  attempt {r.attempt}  {r.duration_ms:8.1f} ms"
            f"{changed}{failure}"
        )
    lines += [compensation.line() for compensation in result.compensations or []]
    if show_state:
        state = result.state.model_dump(mode="json")
        lines += ["state:", json.dumps(state, indent=2, ensure_ascii=False)]
    return "\n".join(lines)


def _short(error: str, workflow_id: str | None) -> str:
    where = f"`agentflow run --json`, or `agentflow trace {workflow_id or 'RUN'}`"
    return limits.terminal_line(error, where)


def print_json(body: dict[str, Any]) -> None:
    """One JSON object on one line (a list prints one per line), durations rounded."""
    print(json.dumps(rounded(body), ensure_ascii=False), flush=True)


def rounded(value: Any, key: str = "") -> Any:
    """``value`` with its durations rounded: ``*_ms`` to 0.1, ``*_seconds`` to 0.001."""
    if isinstance(value, float):
        if key.endswith("_ms"):
            return round(value, 1)
        return round(value, 3) if key.endswith("_seconds") else value
    if isinstance(value, dict):
        return {name: rounded(item, str(name)) for name, item in value.items()}
    if isinstance(value, list):
        return [rounded(item, key) for item in value]
    return value


def agents_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", action="append", default=[], metavar="MODULE",
                        help="module that registers agents and callbacks in code "
                        "(@agentflow.agent); repeat for several")  # fmt: skip


def connection_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, help=f"agentflow.toml whose [temporal] table to use "
        f"(default: {DEFAULT_CONFIG_FILE} if present, else TEMPORAL_ADDRESS etc.)",
    )  # fmt: skip


def flow_settings(path: str | None) -> FlowConfig | None:
    """The file's [temporal], [security] and [payloads] tables; None: no file, defaults."""
    if path is None and not Path(DEFAULT_CONFIG_FILE).is_file():
        return None
    return load_config(path or DEFAULT_CONFIG_FILE, check_handlers=False)


def flow_flag(parser: argparse.ArgumentParser) -> None:
    """``--config`` of a command that needs the flow (its name, its ``[temporal]`` table)."""
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG_FILE,
        help="the flow's agentflow.toml (its name and [temporal] table)",
    )  # fmt: skip


def by_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", help="who decides, recorded with the decision (default: OS user)")


def connected(
    args: argparse.Namespace, command: Callable[[Client, argparse.Namespace], Awaitable[int]]
) -> int:
    """Run ``command`` with a client connected as ``--config`` says (``args.ui_base``: the
    file's ``[temporal] ui_url``, for ``link``)."""
    settings = flow_settings(args.config)
    args.ui_base = settings.temporal.ui_url if settings else None

    async def main() -> int:
        return await command(await connect_flow(settings), args)

    return asyncio.run(main())


FlowCommand = Callable[[Client, argparse.Namespace, FlowConfig], Awaitable[int]]


def with_flow(command: FlowCommand) -> Callable[[argparse.Namespace], int]:
    """Load the flow's config (exit 2 if it is bad, before connecting), then connect."""

    def run(args: argparse.Namespace) -> int:
        config = load_config(args.config, check_handlers=False)
        return connected(args, lambda client, args: command(client, args, config))

    return run


def flow_runner(args: argparse.Namespace, **options: Any) -> Runner:
    """The Runner of ``--config`` (exit 2 on a bad file), whose ``[temporal] ui_url`` links use."""
    runner = Runner.from_config(args.config, **options)
    args.ui_base = runner.config.temporal.ui_url
    return runner


def link(
    client: Client, args: argparse.Namespace, workflow_id: str, run_id: str | None = None
) -> str:
    """The Temporal UI page of a workflow (of one run with ``run_id``), honouring ui_url."""
    return ui_url(client, workflow_id, run_id, args.ui_base)


# --- not found ------------------------------------------------------------------------------


class NotFoundError(AgentflowError):
    """``no <thing> <id> in namespace <namespace>``: exit 1, like every service error."""

    def __init__(
        self, thing: str, name: str, namespace: str, flow: str | None = None, hint: str = ""
    ) -> None:
        of = f" of flow {flow}" if flow else ""
        hint = f" ({hint})" if hint else ""
        super().__init__(f"no {thing} {name}{of} in namespace {namespace}{hint}")


async def find_run(client: Client, run: str) -> tuple[str, str | None]:
    """``RUN`` of the command line (a workflow id or a run id): its workflow id and run id."""
    try:
        return await resolve_workflow_id(client, run)
    except AgentflowError:  # it raises only when neither id is known
        raise NotFoundError("run", run, client.namespace) from None


async def require_workflow(
    client: Client, workflow_id: str, thing: str, name: str, flow: str | None = None
) -> WorkflowExecutionDescription:
    """The workflow's description, or the not-found error naming ``thing`` ``name``."""
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(thing, name, client.namespace, flow) from None
        raise


async def find_session(client: Client, session: str, flow: str | None = None) -> str:
    """The workflow id of ``session`` (of ``flow``; None: whichever flow has it)."""
    if flow is not None:
        workflow_id = names.session_workflow_id(flow, session)
        await require_workflow(client, workflow_id, "session", session, flow)
        return workflow_id
    async for execution in visibility.list_runs(client, session=session):
        if execution.workflow_type == names.SESSION_WORKFLOW:
            return execution.id
    raise NotFoundError("session", session, client.namespace)


async def require_session_runs(client: Client, session: str) -> None:
    """The not-found error unless some run carries ``session`` (a session workflow, or runs
    started with ``--session``)."""
    async for _ in visibility.list_runs(client, session=session, limit=1):
        return
    raise NotFoundError("session", session, client.namespace)
