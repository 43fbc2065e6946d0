"""A closed output pipe (``agentflow trace RUN | head -2``, the reader gone) ends any command
quietly: no message, no traceback, exit 141 as a shell reports for a tool SIGPIPE stopped."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.client import Client

from agentflow.cli import validate
from agentflow.cli.main import EXIT_CLOSED_PIPE, main
from tests.conftest import REPO, flow_config, flow_runner


def with_closed_stdout(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """``agentflow ARGV`` (the console script) writing into a pipe nobody reads any more."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "agentflow"), *argv], cwd=cwd, env=env,
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write)
    return proc.returncode, proc.stderr


def test_a_command_without_temporal_ends_quietly(tmp_path: Path) -> None:
    """``validate`` prints one line, which waits in the buffer until the command ends."""
    argv = ["validate", "--config", str(REPO / "agentflow.toml")]
    assert with_closed_stdout(argv, tmp_path, dict(os.environ)) == (EXIT_CLOSED_PIPE, "")


async def test_a_command_reading_temporal_ends_quietly(client: Client, tmp_path: Path) -> None:
    config = flow_config(agents={"first": "tests.agents:append", "second": "tests.agents:append"},
                         sequential_agents=["first", "second"])  # fmt: skip
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"trail": []})
        await handle.result()
    env = {**os.environ, "TEMPORAL_ADDRESS": client.service_client.config.target_host}
    for argv in (["trace", handle.workflow_id], ["trace", handle.workflow_id, "--json"]):
        code, err = await asyncio.to_thread(with_closed_stdout, argv, tmp_path, env)
        assert (code, err) == (EXIT_CLOSED_PIPE, ""), argv


def test_a_broken_pipe_elsewhere_is_still_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only our own output's closed pipe is quiet: a connection's is reported as before."""

    def broken(*args: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(validate, "load_with_code", broken)
    assert main(["validate", "--config", "agentflow.toml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("agentflow: error: [Errno 32] Broken pipe (is Temporal running?")
    assert len(err.splitlines()) == 1
