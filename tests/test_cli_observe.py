"""The CLI's trace, status, list and graph commands, and the live progress display."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from agentflow.cli.observe import follow, progress_line
from agentflow.models.flow import FlowProgress
from tests.conftest import cli, flow_config, flow_runner
from tests.flows import append_then_noop


def _sequential() -> object:
    return flow_config(
        "sequential",
        {"a": "tests.agents:append", "b": "tests.obs_agents:gate", "c": "tests.agents:append"},
        sequential_agents=["a", "b", "c"],
    )


async def test_trace_list_and_graph_commands(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, session = append_then_noop(), f"s-{uuid.uuid4().hex[:8]}"
    async with flow_runner(client, config) as runner:
        handle = await runner.start({}, session_id=session)
        await handle.result()
    code, out, _ = await cli(capsys, "trace", handle.workflow_id, "--json")
    assert code == 0
    assert [(e["agent"], e["action"]) for e in map(json.loads, out.splitlines())] == [
        ("", "started"), ("a", "started"), ("a", "completed"),
        ("b", "started"), ("b", "completed"), ("", "completed"),
    ]  # fmt: skip
    code, out, _ = await cli(capsys, "trace", handle.run_id, "--agent", "a")  # a run id works
    assert code == 0 and len(out.splitlines()) == 3 and "completed" in out.splitlines()[2]
    rows: list[dict[str, str]] = []
    for _ in range(100):  # visibility is eventually consistent
        code, out, _ = await cli(capsys, "list", "--session", session, "--json")
        rows = [json.loads(line) for line in out.splitlines()]
        if rows:
            break
        await asyncio.sleep(0.1)
    assert [(r["workflow_id"], r["status"], r["mode"]) for r in rows] == [
        (handle.workflow_id, "completed", "sequential")
    ]
    code, out, _ = await cli(capsys, "graph", handle.workflow_id)
    assert code == 0 and out.startswith("flowchart LR\n") and '"b ✓"' in out
    code, _, err = await cli(capsys, "trace")
    assert code == 2 and err.count("\n") == 1 and "--session" in err
    code, _, err = await cli(capsys, "list", "--status", "done")
    assert code == 2 and "allowed: running" in err


async def test_graph_of_a_config_file_to_markdown(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cli_env / "flow.toml").write_text(
        '[orchestration]\nmode = "loop"\nloop_agent = "c"\n'
        '[agents.c]\nhandler = "tests.agents:counter"\n'
    )
    code, _, err = await cli(capsys, "graph", "--config", "flow.toml", "--output", "flow.md")
    text = (cli_env / "flow.md").read_text()
    assert code == 0 and "wrote flow.md" in err
    assert text.startswith("```mermaid\nflowchart LR\n") and text.endswith("```\n")
    assert '|"loop_complete"|' in text


async def test_status_and_live_progress_of_a_running_run(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = cli_env / "gate"
    async with flow_runner(client, _sequential()) as runner:  # type: ignore[arg-type]
        handle = await runner.start({"gate_file": str(gate)})
        for _ in range(400):
            code, out, _ = await cli(capsys, "status", handle.workflow_id, "--json")
            body = json.loads(out)
            if body["progress"] and body["progress"]["running"] == ["b"]:
                break
            await asyncio.sleep(0.05)
        assert code == 0 and body["status"] == "running"
        assert (body["progress"]["completed"], body["progress"]["total"]) == (1, 3)
        screen = io.StringIO()
        waiting = asyncio.ensure_future(handle.result())
        watcher = asyncio.create_task(follow(handle.handle, waiting, 0.0, screen))
        await asyncio.sleep(0.3)
        gate.touch()
        await watcher
        code, out, _ = await cli(capsys, "status", handle.workflow_id)
    lines = screen.getvalue().split("\r\x1b[2K")
    assert any("1/3 done · 1 running (b)" in line for line in lines)
    assert lines[-1].startswith("[##########] 3/3 done · 0 running · 0 failed")
    assert code == 0 and "completed" in out.splitlines()[0] and "3/3 done" in out


def test_progress_line() -> None:
    progress = FlowProgress(flow="f", mode="collaborative", total=4, completed=1, failed=1,
                            running=["x", "y"])  # fmt: skip
    assert progress_line(progress, 2.25) == (
        "[#####-----] 1/4 done · 2 running (x, y) · 1 failed · 2.2s"
    )
    route = FlowProgress(flow="f", mode="route", completed=3)
    assert progress_line(route, 0) == "3 done · 0 running · 0 failed · 0.0s"


async def test_run_json_stays_one_object(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cli_env / "flow.toml").write_text(
        '[orchestration]\nmode = "sequential"\nsequential_agents = ["a"]\n'
        '[agents.a]\nhandler = "tests.agents:append"\n'
    )
    config = flow_config("sequential", {"a": "tests.agents:append"}, sequential_agents=["a"])
    async with flow_runner(client, config) as runner:
        code, out, _ = await cli(capsys, "run", "--config", "flow.toml", "--task-queue",
                                 runner.task_queue, "--json")  # fmt: skip
    body = json.loads(out)
    assert code == 0 and out.count("\n") == 1 and body["status"] == "completed"
