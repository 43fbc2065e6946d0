"""The rules every command follows (agentflow/cli/_common.py): one not-found line, JSON Lines
for lists, rounded durations, and links that honour ``[temporal] ui_url``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow.cli._common import rounded
from agentflow.config import load_config
from agentflow.worker.serve import serving
from tests.conftest import REPO, flow_runner
from tests.test_cli import cli, write_config
from tests.test_cli_events import until

UI = "https://ui.example.com/t/"


def _flow(name: str, topic: str) -> str:
    return f"""
[agent_flow]
name = "{name}"
[orchestration]
mode = "sequential"
sequential_agents = ["gate", "check"]
[orchestration.retry]
initial_interval_seconds = 0.05
[agents.gate]
handler = "tests.agents:append"
approval = "before"
[agents.check]
handler = "tests.event_agents:check"
[agents.listener]
handler = "tests.agents:append"
subscribes = ["{topic}"]
[bus]
publishes = ["{topic.split(".")[0]}.*"]
"""


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def test_every_not_found_is_one_line_and_exit_1(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = _unique("nf")
    write_config(cli_env, _flow(flow, f"{flow}.news"), client)
    ns = client.namespace
    cases: list[tuple[list[str], str]] = [
        (["trace", "nope-run"], f"no run nope-run in namespace {ns}"),
        (["trace", "--session", "nope-s"], f"no session nope-s in namespace {ns}"),
        (["trace", "--event", "nope-e"], f"no bus event nope-e in namespace {ns} ("),
        (["watch", "nope-run"], f"no run nope-run in namespace {ns}"),
        (["watch", "--session", "nope-s"], f"no session nope-s of flow {flow} in namespace {ns}"),
        (["status", "nope-run"], f"no run nope-run in namespace {ns}"),
        (["status", "nope-run", "--json"], f"no run nope-run in namespace {ns}"),
        (["graph", "nope-run"], f"no run nope-run in namespace {ns}"),
        (["usage", "nope-run"], f"no run nope-run in namespace {ns}"),
        (["usage", "--session", "nope-s"], f"no session nope-s of flow {flow} in namespace {ns}"),
        (["session", "show", "nope-s"], f"no session nope-s of flow {flow} in namespace {ns}"),
        (["session", "close", "nope-s"], f"no session nope-s of flow {flow} in namespace {ns}"),
        (["dead-letters", "show", "nope-l"], f"no dead letter nope-l in namespace {ns}"),
        (["dead-letters", "purge", "nope-l"], f"no dead letter nope-l in namespace {ns}"),
        (["dead-letters", "redrive", "nope-l"], f"no dead letter nope-l in namespace {ns}"),
        (["approve", "nope-run"], f"no run nope-run in namespace {ns}"),
        (
            ["reject", "--session", "nope-s", "--reason", "x"],
            f"no session nope-s in namespace {ns}",
        ),
    ]
    for argv, expected in cases:
        code, out, err = await cli(capsys, *argv)
        assert (code, out) == (1, ""), (argv, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"agentflow: error: {expected}"), (argv, err)
        if not expected.endswith("("):
            assert lines[0] == f"agentflow: error: {expected}", argv


def test_durations_are_rounded_where_dumped() -> None:
    body = {"duration_ms": 1.3190000000000002, "results": [{"duration_ms": 2.25000001}],
            "timeout_seconds": 0.30000000000000004, "ratio": 0.1 + 0.2, "n": 3}  # fmt: skip
    assert rounded(body) == {"duration_ms": 1.3, "results": [{"duration_ms": 2.3}],
                             "timeout_seconds": 0.3, "ratio": 0.1 + 0.2, "n": 3}  # fmt: skip


def _json_lines(out: str) -> list[dict[str, Any]]:
    """Every line one JSON object (JSON Lines); no line may be anything else."""
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(isinstance(row, dict) for row in rows), out
    return rows


async def test_lists_are_json_lines_and_durations_have_no_float_noise(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.flows import append_then_noop

    config, session = append_then_noop(), _unique("jl")
    async with flow_runner(client, config) as runner:
        handle = await runner.start({}, session_id=session)
        await handle.result()
    code, out, _ = await cli(capsys, "trace", handle.workflow_id, "--json")
    entries = _json_lines(out)
    assert code == 0 and len(entries) == 6
    durations = [e["duration_ms"] for e in entries if e["duration_ms"] is not None]
    assert durations and all(round(d, 1) == d for d in durations)
    code, out, _ = await cli(capsys, "trace", handle.workflow_id, "--json", "--agent", "zz")
    assert (code, out) == (0, "")  # a filter that matches nothing: no line, not an error

    async def listed() -> list[dict[str, Any]]:
        code, out, _ = await cli(capsys, "list", "--session", session, "--json")
        assert code == 0
        return _json_lines(out)

    assert [row["workflow_id"] for row in await until(listed)] == [handle.workflow_id]
    # Empty lists print nothing at all in JSON Lines.
    for argv in (["list", "--session", "nobody-here"], ["pending", "--session", "nobody-here"],
                 ["dead-letters", "list", "--session", "nobody-here"],
                 ["session", "list", "--flow", "nobody-here"]):  # fmt: skip
        code, out, err = await cli(capsys, *argv, "--json")
        assert (code, out) == (0, ""), (argv, out, err)


async def test_every_printed_link_honours_temporal_ui_url(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow, topic = _unique("links"), f"{_unique('lk')}.news"
    queue = _unique("q")
    path = write_config(cli_env, _flow(flow, topic), client)  # ends in its [temporal] table
    path.write_text(path.read_text() + f'task_queue = "{queue}"\nui_url = "{UI}"\n')
    config = load_config(path)
    base = f"{UI.rstrip('/')}/namespaces/{client.namespace}/workflows/"
    session, block = _unique("s"), cli_env / "block"
    block.touch()

    def linked(out: str) -> bool:
        return base in out and ":8233" not in out and "localhost" not in out

    async with serving(client, [(config, REPO)], task_queue=queue):
        code, out, err = await cli(capsys, "emit", "--session", session, "--input",
                                   json.dumps({"block_file": str(block)}))  # fmt: skip
        assert code == 0 and linked(out), out + err

        async def approved() -> str | None:
            code, out, _ = await cli(capsys, "approve", "--session", session)
            return out if code == 0 else None

        assert linked(await until(approved))

        async def letters() -> list[dict[str, Any]]:
            code, out, _ = await cli(capsys, "dead-letters", "list", "--session", session,
                                     "--json")  # fmt: skip
            assert code == 0
            return _json_lines(out)

        [letter] = await until(letters)
        code, out, _ = await cli(capsys, "dead-letters", "show", letter["id"])
        assert code == 0 and linked(out), out
        code, out, _ = await cli(capsys, "session", "show", session)
        assert code == 0 and linked(out), out

        code, out, _ = await cli(capsys, "emit", "--session", session, "--input", "{}")
        assert code == 0 and linked(out)

        async def rejected() -> str | None:
            code, out, _ = await cli(capsys, "reject", "--session", session, "--reason", "no")
            return out if code == 0 else None

        assert linked(await until(rejected))
        code, out, _ = await cli(capsys, "publish", topic, "--input", "{}")
        assert code == 0 and linked(out), out
        code, out, _ = await cli(capsys, "topics")
        assert code == 0 and f"bus shards: {base}" in out
        code, out, _ = await cli(capsys, "topics", "--json")
        assert code == 0 and any(row["flow"] == flow for row in _json_lines(out))
