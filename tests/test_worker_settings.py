"""Temporal connection settings: Temporal's own env settings, overridden by [temporal]."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from agentflow.cli.main import main
from agentflow.client.connection import connect, connect_settings
from agentflow.config import TemporalConfig
from agentflow.errors import AgentflowError, ConfigError


@pytest.fixture(autouse=True)
def clean_temporal_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Temporal settings from the machine running the tests."""
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_PROFILE", "TEMPORAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "no-temporal.toml"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_defaults() -> None:
    settings = connect_settings()
    assert (settings["target_host"], settings["namespace"]) == ("localhost:7233", "default")


def test_env_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.example:7999")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "team-a")
    settings = connect_settings(TemporalConfig())
    assert (settings["target_host"], settings["namespace"]) == ("temporal.example:7999", "team-a")


def test_temporal_table_overrides_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.example:7999")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "team-a")
    settings = connect_settings(TemporalConfig(address="10.0.0.5:7233", namespace="team-b"))
    assert (settings["target_host"], settings["namespace"]) == ("10.0.0.5:7233", "team-b")
    only_address = connect_settings(TemporalConfig(address="10.0.0.5:7233"))
    assert only_address["namespace"] == "team-a"


def test_profile_from_the_temporal_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    file = tmp_path / "temporal.toml"
    file.write_text('[profile.staging]\naddress = "staging:7233"\nnamespace = "stage"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(file))
    settings = connect_settings(TemporalConfig(profile="staging"))
    assert (settings["target_host"], settings["namespace"]) == ("staging:7233", "stage")


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"Temporal client settings: .*'nope'.*\[temporal\]"):
        connect_settings(TemporalConfig(profile="nope"))


async def test_closed_port_gives_a_clear_error() -> None:
    port = closed_port()
    with pytest.raises(AgentflowError) as info:
        await connect(TemporalConfig(address=f"127.0.0.1:{port}"))
    message = str(info.value)
    assert message.startswith(f"cannot connect to Temporal at 127.0.0.1:{port}")
    assert "agentflow dev" in message


async def test_worker_command_with_no_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agentflow.toml"
    config.write_text(
        '[orchestration]\nmode = "sequential"\nsequential_agents = ["a"]\n'
        '[agents.a]\nhandler = "tests.agents:append"\n'
    )
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{closed_port()}")
    code = await asyncio.to_thread(main, ["worker", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot connect to Temporal at 127.0.0.1:" in err
    assert "Traceback" not in err


async def test_a_worker_refuses_files_that_cannot_share_its_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One worker connects once, with one codec and one payload store: files that differ in
    [payloads] (or [security], or the server) are refused before it connects."""
    flow = '[orchestration]\nmode = "sequential"\nsequential_agents = ["a"]\n'
    agent = '[agents.a]\nhandler = "tests.agents:append"\n'
    plain, stored = tmp_path / "plain.toml", tmp_path / "stored.toml"
    plain.write_text(f'[agent_flow]\nname = "plain"\n{flow}{agent}')
    stored.write_text(
        f'[agent_flow]\nname = "stored"\n{flow}{agent}'
        f'[payloads]\nstorage = "filesystem"\npath = "{tmp_path / "blobs"}"\n'
    )
    argv = ["worker", "--config", str(plain), "--config", str(stored)]
    code = await asyncio.to_thread(main, argv)
    err = capsys.readouterr().err
    assert code == 2
    assert "flows 'plain' and 'stored' differ in [payloads]" in err
    assert "run them in separate processes" in err and "Traceback" not in err
