"""The ``agentflow`` command: exit codes, one-line errors, and ``run --json`` against Temporal."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow.cli.main import main
from agentflow.config import load_config
from agentflow.models.flow import FlowResult
from tests.conftest import running_worker

TOP_KEYS = {"workflow_id", "run_id", "status", "mode", "state", "results", "error"}
# The result fields, plus changed_keys (which data keys the agent wrote).
RESULT_KEYS = {
    "agent", "status", "attempt", "started_at", "ended_at", "duration_ms", "error",
    "changed_keys", "topic", "error_type", "rejected_by", "approval", "usage",
    "cached", "saved",  # the result cache: a hit, and what the cached call had used
}  # fmt: skip


def write_config(tmp_path: Path, body: str, client: Client | None = None) -> Path:
    """An agentflow.toml; with ``client`` a [temporal] table points at the test server."""
    text = textwrap.dedent(body)
    if client is not None:
        text += f'\n[temporal]\naddress = "{client.service_client.config.target_host}"\n'
    path = tmp_path / "agentflow.toml"
    path.write_text(text, encoding="utf-8")
    return path


SEQUENTIAL = """
[agent_flow]
name = "cli-seq"
[orchestration]
mode = "sequential"
sequential_agents = ["first", "second"]
[orchestration.retry]
initial_interval_seconds = 0.05
[agents.first]
handler = "tests.agents:append"
[agents.second]
handler = "tests.agents:async_append"
"""


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in a thread (it calls asyncio.run); returns exit code, stdout, stderr."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def one_json_object(out: str) -> dict[str, Any]:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    body = json.loads(lines[0])
    assert isinstance(body, dict)
    return body


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) >= 1
    assert lines[0].startswith("agentflow: error: ")
    assert "Traceback" not in err
    return err


# --- validate and bad input: no server needed -------------------------------------------


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, SEQUENTIAL)
    assert main(["validate", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"{path}: ok: flow 'cli-seq', mode sequential, 2 enabled agents"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[orchestration\n", "invalid TOML"),
        ('[orchestration]\nmode = "paralel"\n', "did you mean 'parallel'?"),
        (SEQUENTIAL.replace("tests.agents:append", "tests.agents:nope"), "no attribute 'nope'"),
    ],
)
def test_validate_bad_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    path = write_config(tmp_path, body)
    assert main(["validate", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = one_error_line(captured.err)
    assert str(path) in err and expected in err


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: file not found" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{not json", "--input: the value is not valid JSON"),
        ("[1, 2]", "--input: expected a JSON object, got list"),
        ("@missing.json", "--input: cannot read missing.json"),
        ("@bad.json", "--input: bad.json is not valid JSON"),
    ],
)
def test_run_bad_input_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{oops")
    path = write_config(tmp_path, SEQUENTIAL)
    assert main(["run", "--config", str(path), "--input", value]) == 2
    assert expected in one_error_line(capsys.readouterr().err)


def test_console_script_bad_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[orchestration]\nmode = "loop"\nmax_iterations = 0\n')
    script = Path(sys.executable).parent / "agentflow"
    proc = subprocess.run(
        [str(script), "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{path}: orchestration.max_iterations: " in proc.stderr
    assert proc.stdout == ""


def test_dev_port_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken, socket.socket() as free:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        free.bind(("127.0.0.1", 0))  # reserved, not listening: the UI port is "free"
        port, ui_port = taken.getsockname()[1], free.getsockname()[1]
        db = str(tmp_path / "t.db")
        code = main(["dev", "--port", str(port), "--ui-port", str(ui_port), "--db", db])
        err = one_error_line(capsys.readouterr().err)
        assert code in (1, 2)
        assert f"port {port} on 127.0.0.1 is already in use (--port)" in err
        code = main(["dev", "--port", str(ui_port), "--ui-port", str(port), "--db", db])
        err = one_error_line(capsys.readouterr().err)
        assert code in (1, 2)
        assert f"port {port} on 127.0.0.1 is already in use (--ui-port)" in err
    assert not (tmp_path / "t.db").exists()


# --- run against the test Temporal server -----------------------------------------------


async def test_run_json_completed(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, SEQUENTIAL, client)
    async with running_worker(client, load_config(path)) as queue:
        code, out, err = await cli(
            capsys, "run", "--config", str(path), "--json", "--task-queue", queue,
            "--input", '{"trail": ["start"]}',
        )  # fmt: skip
    assert code == 0, err
    body = one_json_object(out)
    assert set(body) == TOP_KEYS
    assert (body["status"], body["mode"], body["error"]) == ("completed", "sequential", None)
    assert body["workflow_id"].startswith("cli-seq-") and body["run_id"]
    assert body["state"] == {
        "data": {"trail": ["start", "first", "second"]},
        "meta": {},
        "context": {},
    }
    assert [r["agent"] for r in body["results"]] == ["first", "second"]
    for result in body["results"]:
        assert set(result) == RESULT_KEYS
        assert (result["status"], result["attempt"], result["error"]) == ("completed", 1, None)
        assert result["duration_ms"] >= 0
        assert result["started_at"] <= result["ended_at"]
    described = await client.get_workflow_handle(body["workflow_id"]).describe()
    assert described.run_id == body["run_id"]


async def test_run_failed_exits_1(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SEQUENTIAL.replace("tests.agents:async_append", "tests.agents:fatal")
    path = write_config(tmp_path, text, client)
    async with running_worker(client, load_config(path)) as queue:
        code, out, _ = await cli(
            capsys, "run", "--config", str(path), "--json", "--task-queue", queue
        )
    assert code == 1
    body = one_json_object(out)
    assert set(body) == TOP_KEYS
    assert body["status"] == "failed"
    assert "'second'" in body["error"] and "can never be processed" in body["error"]
    assert [(r["agent"], r["status"]) for r in body["results"]] == [
        ("first", "completed"),
        ("second", "failed"),
    ]
    failed = body["results"][1]
    assert failed["attempt"] == 1
    assert failed["error"] == "FatalError: the input can never be processed"


async def test_run_unknown_target_exits_2(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, SEQUENTIAL, client)
    code, out, err = await cli(capsys, "run", "--config", str(path), "--target", "thrid", "--json")
    assert code == 2
    assert out == ""
    assert "--target: no enabled agent 'thrid'" in one_error_line(err)
    assert "first, second" in err


async def test_run_no_wait_session_and_file_input(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, SEQUENTIAL, client)
    (tmp_path / "input.json").write_text('{"trail": ["from-file"], "note": "é"}')
    async with running_worker(client, load_config(path)) as queue:
        code, out, _ = await cli(
            capsys, "run", "--config", str(path), "--task-queue", queue, "--no-wait", "--json",
            "--session", "sess-42", "--input", f"@{tmp_path / 'input.json'}",
        )  # fmt: skip
        assert code == 0
        started = one_json_object(out)
        assert started == {
            "workflow_id": started["workflow_id"],
            "run_id": started["run_id"],
            "status": "running",
            "mode": "sequential",
        }
        assert "sess-42" in started["workflow_id"]
        handle = client.get_workflow_handle(
            started["workflow_id"], run_id=started["run_id"], result_type=FlowResult
        )
        result = await handle.result()
    assert result.state.data == {"trail": ["from-file", "first", "second"], "note": "é"}
    assert result.state.meta["session_id"] == "sess-42"


async def test_run_loop_and_route_add_their_keys(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = write_config(
        tmp_path,
        """
        [orchestration]
        mode = "loop"
        loop_agent = "count"
        max_iterations = 5
        [agents.count]
        handler = "tests.agents:counter"
        """,
        client,
    )
    async with running_worker(client, load_config(loop)) as queue:
        code, out, _ = await cli(
            capsys, "run", "--config", str(loop), "--json", "--task-queue", queue,
            "--input", '{"stop_at": 2}',
        )  # fmt: skip
    body = one_json_object(out)
    assert code == 0
    assert set(body) == TOP_KEYS | {"iterations", "stop_reason"}
    assert body["iterations"] == 2 and body["state"]["data"]["count"] == 2

    route = write_config(
        tmp_path,
        """
        [orchestration]
        mode = "route"
        [agents.a]
        handler = "tests.agents:router"
        [agents.b]
        handler = "tests.agents:router"
        """,
        client,
    )
    async with running_worker(client, load_config(route)) as queue:
        code, out, _ = await cli(
            capsys, "run", "--config", str(route), "--json", "--task-queue", queue,
            "--target", "a", "--input", '{"routes": {"a": "b"}}',
        )  # fmt: skip
    body = one_json_object(out)
    assert code == 0
    assert set(body) == TOP_KEYS | {"path"}
    assert body["path"] == ["a", "b"]
    assert body["state"]["data"]["trail"] == ["a", "b"]


async def test_run_uses_temporal_address_env(
    client: Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    path = write_config(tmp_path, SEQUENTIAL)  # no [temporal] table
    async with running_worker(client, load_config(path)) as queue:
        code, out, _ = await cli(capsys, "run", "--config", str(path), "--task-queue", queue)
    assert code == 0
    assert "flow 'cli-seq' (sequential): completed" in out
    assert '"first"' in out and "✓ second" in out
