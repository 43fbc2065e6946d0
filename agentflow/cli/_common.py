"""What every ``agentflow`` command shares: exit codes, ``--input``, ``--json`` output, the
``--config`` flag of commands that only connect, and running a command against Temporal.

Exit codes: 0 success, 1 the flow (or a service) failed, 2 bad input (config, flags, JSON).
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

from temporalio.client import Client

from agentflow import limits
from agentflow.client.connection import connect_flow
from agentflow.config import DEFAULT_CONFIG_FILE, FlowConfig, load_config
from agentflow.errors import ConfigError
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
    for extra in ("iterations", "stop_reason"):
        if getattr(result, extra) is not None:
            body[extra] = getattr(result, extra)
    if result.path:
        body["path"] = result.path
    if result.usage:  # LLM agents ran: their tokens, requests and tool calls, summed
        body["usage"] = result.usage.model_dump()
    return body


def format_result(result: FlowResult, show_state: bool = True) -> str:
    lines = [f"flow {result.flow!r} ({result.mode}): {result.status}"]
    if result.error:
        lines.append(f"error: {result.error}")
    if result.stop_reason:
        lines.append(f"loop: {result.iterations} iterations, stopped by {result.stop_reason}")
    if result.path:
        lines.append("path: " + " → ".join(result.path))
    width = max((len(r.agent) for r in result.results), default=5)
    for r in result.results:
        mark = "✓" if r.status == "completed" else "✗"
        changed = f"  changed: {', '.join(r.changed_keys)}" if r.changed_keys else ""
        failure = f"  {r.error}" if r.error else ""
        lines.append(
            f"  {mark} {r.agent:<{width}}  attempt {r.attempt}  {r.duration_ms:8.1f} ms"
            f"{changed}{failure}"
        )
    if show_state:
        state = result.state.model_dump(mode="json")
        lines += ["state:", json.dumps(state, indent=2, ensure_ascii=False)]
    return "\n".join(lines)


def print_json(body: dict[str, Any]) -> None:
    print(json.dumps(body, ensure_ascii=False))


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


def connected(
    args: argparse.Namespace, command: Callable[[Client, argparse.Namespace], Awaitable[int]]
) -> int:
    async def main() -> int:
        return await command(await connect_flow(flow_settings(args.config)), args)

    return asyncio.run(main())
