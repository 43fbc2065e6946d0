"""[security]: AES-256-GCM payloads end to end, key rotation, and the codec server.

The proof that nothing leaks reads the server's own record of a run (``temporal workflow show
--output json``), not what agentflow decodes: a control run without encryption shows that the
same search does find the markers when they are there.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError

from agentflow import Event, State
from agentflow.cli.codec_server import CodecServer
from agentflow.client.codec import (
    DecryptionError,
    KeyRing,
    decrypt_payload,
    encrypt_payload,
    load_keys,
    new_key_entry,
    parse_keys,
)
from agentflow.client.connection import connect_flow
from agentflow.config import FlowConfig, SecurityConfig, parse_config
from agentflow.errors import ConfigError
from agentflow.inspect.replay import replay_runs
from agentflow.worker.devserver_process import DevServer, temporal_binary
from tests.conftest import REPO, cli, codec_server, running_worker

REVEAL = "tests.test_encryption:reveal"
FAILS = "tests.test_encryption:fails_with_secret"
UI = "http://localhost:8233"


def reveal(event: Event, state: State) -> dict[str, Any]:
    """Copies the input's secret into new state, so input, state and output all carry it."""
    return {f"seen_by_{event.target_agent}": f"OUT-{state.data['secret']}"}


def fails_with_secret(event: Event, state: State) -> None:
    raise ValueError(f"cannot handle {state.data['secret']}")


def _config(address: str, flow: str, security: dict[str, Any] | None, **agents: str) -> FlowConfig:
    raw: dict[str, Any] = {
        "agent_flow": {"name": flow},
        "orchestration": {"mode": "sequential", "sequential_agents": list(agents),
                          "retry_attempts": 0},
        "agents": {name: {"handler": handler} for name, handler in agents.items()},
        "temporal": {"address": address},
    }  # fmt: skip
    if security is not None:
        raw["security"] = security
    return parse_config(raw, base_dir=REPO, check_handlers=True)


def _key_file(path: Path, *ids: str) -> str:
    path.write_text("# test keys, oldest first\n" + "\n".join(new_key_entry(i) for i in ids))
    return str(path)


async def _raw_history(address: str, workflow_id: str, *extra: str) -> Any:
    """The run as the server stores it, read by Temporal's own CLI."""
    proc = await asyncio.create_subprocess_exec(
        temporal_binary(), "workflow", "show", "--output", "json", "--address", address,
        "--workflow-id", workflow_id, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _readable(history: Any) -> str:
    """Every string of the history, and every base64 string decoded (payload data is base64)."""
    parts = []
    for text in _strings(history):
        parts.append(text)
        with contextlib.suppress(binascii.Error, ValueError):
            parts.append(base64.b64decode(text, validate=True).decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.fixture
async def address(client: Client) -> str:
    return client.service_client.config.target_host


async def _run(config: FlowConfig, data: dict[str, Any]) -> tuple[Client, str]:
    from agentflow.client.runner import Runner

    flow_client = await connect_flow(config)
    async with running_worker(flow_client, config) as task_queue:
        handle = await Runner(config, flow_client, task_queue).start(data)
        with contextlib.suppress(WorkflowFailureError):  # failing flows are tested too
            await handle.handle.result()
    return flow_client, handle.workflow_id


# --- keys and the codec -------------------------------------------------------------------


def test_keys_are_id_base64_entries_and_bad_ones_are_one_line() -> None:
    first, second = new_key_entry("k1"), new_key_entry("k2")
    keys = parse_keys(f"{first}, {second}  # two keys\n", "test")
    assert list(keys) == ["k1", "k2"] and all(len(key) == 32 for key in keys.values())
    for text, message in [
        ("k1", "bad key entry"),
        ("bad id!=AAAA", "bad key entry"),
        ("k1=not*base64", "not valid base64"),
        (f"k1={base64.b64encode(b'short').decode()}", "is 5 bytes; AES-256 needs 32"),
        (f"{first}\n{first}", "listed twice"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_keys(text, "test")


def test_keys_come_from_the_file_then_the_environment(tmp_path: Path) -> None:
    security = SecurityConfig(encrypt=True, key_file=_key_file(tmp_path / "keys", "old", "mid"))
    ring = load_keys(security, {"AGENTFLOW_ENCRYPTION_KEYS": new_key_entry("new")})
    assert list(ring.keys) == ["old", "mid", "new"] and ring.newest == "new"
    with pytest.raises(
        ConfigError, match="no encryption keys were found: set AGENTFLOW_ENCRYPTION_KEYS"
    ):
        load_keys(SecurityConfig(encrypt=True), {})
    with pytest.raises(ConfigError, match=r"key_file: cannot read .*absent: No such file"):
        load_keys(SecurityConfig(encrypt=True, key_file=str(tmp_path / "absent")), {})


def test_payloads_are_sealed_with_the_newest_key_and_opened_with_any_listed() -> None:
    old = KeyRing(parse_keys(new_key_entry("k1"), "t"), "t")
    both = KeyRing({**old.keys, **parse_keys(new_key_entry("k2"), "t")}, "t")
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"secret": "s3cr3t"}')
    sealed = encrypt_payload(old, plain)
    assert b"s3cr3t" not in sealed.SerializeToString()
    assert sealed.metadata["encryption-key-id"] == b"k1"
    assert decrypt_payload(both, sealed) == plain  # rotated: the old key still opens
    assert encrypt_payload(both, plain).metadata["encryption-key-id"] == b"k2"
    assert decrypt_payload(both, plain) == plain  # written before encryption: passes through
    only_new = KeyRing({"k2": both.keys["k2"]}, "$AGENTFLOW_ENCRYPTION_KEYS")
    with pytest.raises(DecryptionError, match="key 'k1', which is not among the keys from"):
        decrypt_payload(only_new, sealed)
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata["encryption-key-id"] = b"k2"
    with pytest.raises(DecryptionError, match="failed authentication"):
        decrypt_payload(both, relabelled)


def test_dev_wires_the_ui_to_a_codec_endpoint() -> None:
    command = DevServer(ui_codec_endpoint="http://127.0.0.1:8234").command()
    assert command[command.index("--ui-codec-endpoint") + 1] == "http://127.0.0.1:8234"
    assert "--ui-codec-endpoint" not in DevServer().command()


# --- end to end against the dev server ----------------------------------------------------


async def test_history_holds_no_plaintext_of_input_state_output_or_errors(
    address: str, tmp_path: Path
) -> None:
    secret = f"SECRET-{uuid.uuid4().hex}"
    security = {"encrypt": True, "key_file": _key_file(tmp_path / "keys", "k1")}
    flow = f"enc-{uuid.uuid4().hex[:8]}"
    config = _config(address, flow, security, a=REVEAL, b=REVEAL)
    flow_client, workflow_id = await _run(config, {"secret": secret})
    result = await flow_client.get_workflow_handle(workflow_id).result()
    assert result["state"]["data"]["seen_by_b"] == f"OUT-{secret}"  # decrypted for us
    raw = _readable(await _raw_history(address, workflow_id))
    assert "secret" not in raw and secret not in raw and "seen_by" not in raw
    assert "binary/encrypted" in raw
    # A failing agent's message quotes the input: it is sealed too (encoded failure attributes).
    failing = _config(address, flow + "-f", security, a=FAILS)
    failed_id = (await _run(failing, {"secret": secret}))[1]
    assert secret not in _readable(await _raw_history(address, failed_id))
    # The control: the same search finds the markers in a run without encryption.
    plain_id = (await _run(_config(address, flow + "-p", None, a=REVEAL), {"secret": secret}))[1]
    assert f"OUT-{secret}" in _readable(await _raw_history(address, plain_id))
    plain_failed = (await _run(_config(address, flow + "-pf", None, a=FAILS), {"secret": secret}))[
        1
    ]
    assert f"cannot handle {secret}" in _readable(await _raw_history(address, plain_failed))


async def test_keys_rotate_across_runs(address: str, tmp_path: Path) -> None:
    flow = f"rot-{uuid.uuid4().hex[:8]}"
    keys = tmp_path / "keys"
    _key_file(keys, "k1")
    config = _config(address, flow, {"encrypt": True, "key_file": str(keys)}, a=REVEAL)
    _, old_run = await _run(config, {"secret": "before"})
    keys.write_text(keys.read_text() + "\n" + new_key_entry("k2"))  # rotate: append the new key
    rotated, new_run = await _run(config, {"secret": "after"})
    assert "k1" in _readable(await _raw_history(address, old_run))
    new_raw = _readable(await _raw_history(address, new_run))
    assert "k2" in new_raw and "encryption-key-id" in new_raw
    old = await rotated.get_workflow_handle(old_run).result()
    assert old["state"]["data"]["seen_by_a"] == "OUT-before"
    report = await replay_runs(rotated, flow=flow)  # the Replayer decrypts both generations
    assert report.failed == []
    keys.write_text(new_key_entry("k3"))  # k1 and k2 dropped: old runs can no longer be read
    with pytest.raises(DecryptionError, match="key 'k1'"):
        await (await connect_flow(config)).get_workflow_handle(old_run).result()


async def test_trace_reads_encrypted_runs_and_their_errors_with_the_config(
    address: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "elsewhere").mkdir()
    flow = f"tr-{uuid.uuid4().hex[:8]}"
    key_file = _key_file(tmp_path / "keys", "k1")
    _, workflow_id = await _run(
        _config(address, flow, {"encrypt": True, "key_file": key_file}, a=REVEAL, b=FAILS),
        {"secret": "x"},
    )
    toml = tmp_path / "agentflow.toml"
    toml.write_text(
        f'[agent_flow]\nname = "{flow}"\n[orchestration]\nmode = "sequential"\n'
        f'sequential_agents = ["a"]\n[agents.a]\nhandler = "{REVEAL}"\n'
        f'[temporal]\naddress = "{address}"\n'
        f'[security]\nencrypt = true\nkey_file = "{key_file}"\n'
    )
    code, out, err = await cli(capsys, "trace", workflow_id, "--config", str(toml), "--json")
    assert code == 0, err
    entries = [json.loads(line) for line in out.splitlines()]  # JSON Lines
    lines = {(entry["agent"], entry["action"]): entry for entry in entries}
    assert ("a", "completed") in lines
    # The failure's message was sealed in history; trace opens it with the keys.
    assert lines[("b", "failed")]["detail"] == "ValueError: cannot handle x"
    # Without the keys: one line that says what is missing, exit 1.
    monkeypatch.delenv("AGENTFLOW_ENCRYPTION_KEYS", raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, out, err = await cli(capsys, "trace", workflow_id)
    assert code == 1 and out == ""
    assert "encrypted with key 'k1', and this process has no keys" in err
    assert len(err.splitlines()) == 1


# --- the codec server ---------------------------------------------------------------------


@pytest.fixture
def codec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CodecServer]:
    monkeypatch.delenv("AGENTFLOW_CODEC_TOKEN", raising=False)
    with codec_server(SecurityConfig(key_file=_key_file(tmp_path / "keys", "k1"))) as server:
        yield server


def _request(
    server: CodecServer, path: str, body: Any = None, method: str = "POST", **headers: str
) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, dict(err.headers), json.loads(raw) if raw else None


PLAIN = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
         "data": base64.b64encode(b'{"secret": "s3cr3t"}').decode()}  # fmt: skip


def test_codec_server_encodes_and_decodes(codec: CodecServer) -> None:
    status, _, encoded = _request(codec, "/encode", {"payloads": [PLAIN]})
    assert status == 200
    [sealed] = encoded["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"s3cr3t" not in base64.b64decode(sealed["data"])
    # The UI may prefix the namespace; and unencrypted payloads come back unchanged.
    status, _, decoded = _request(codec, "/default/decode", {"payloads": [sealed, PLAIN]},
                                  **{"X-Namespace": "default"})  # fmt: skip
    assert status == 200 and decoded["payloads"] == [PLAIN, PLAIN]
    assert _request(codec, "/decode", {"payloads": "nope"})[0] == 400
    assert _request(codec, "/elsewhere", {"payloads": []})[0] == 404


def test_codec_server_answers_only_the_ui_origin(codec: CodecServer) -> None:
    status, headers, _ = _request(codec, "/decode", method="OPTIONS", Origin=UI)
    assert status == 204 and headers["Access-Control-Allow-Origin"] == UI
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    status, headers, _ = _request(codec, "/decode", method="OPTIONS", Origin="http://evil.test")
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    status, headers, _ = _request(
        codec, "/decode", {"payloads": [PLAIN]}, Origin="http://evil.test"
    )
    assert status == 403
    status, headers, _ = _request(codec, "/decode", {"payloads": [PLAIN]}, Origin=UI)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == UI


def test_codec_server_with_a_token_requires_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UI_TOKEN", "t0ken")
    security = SecurityConfig(key_file=_key_file(tmp_path / "keys", "k1"), token_env="UI_TOKEN")
    with codec_server(security) as server:
        body = {"payloads": [PLAIN]}
        assert _request(server, "/decode", body)[0] == 401
        assert _request(server, "/decode", body, Authorization="Bearer wrong")[0] == 401
        assert _request(server, "/decode", body, Authorization="Bearer t0ken")[0] == 200
        # The preflight carries no token; it only says which headers may follow.
        assert _request(server, "/decode", method="OPTIONS", Origin=UI)[0] == 204


async def test_temporal_cli_decodes_a_run_through_the_codec_server(
    address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENTFLOW_CODEC_TOKEN", raising=False)
    key_file = _key_file(tmp_path / "keys", "k1")
    secret = f"SECRET-{uuid.uuid4().hex}"
    config = _config(address, f"cs-{uuid.uuid4().hex[:8]}",
                     {"encrypt": True, "key_file": key_file}, a=REVEAL)  # fmt: skip
    _, workflow_id = await _run(config, {"secret": secret})
    monkeypatch.setenv("CODEC_TOKEN", "t0ken")
    with codec_server(SecurityConfig(key_file=key_file, token_env="CODEC_TOKEN")) as server:
        shown = await _raw_history(address, workflow_id, "--codec-endpoint", server.url,
                                   "--codec-auth", "Bearer t0ken")  # fmt: skip
        assert f"OUT-{secret}" in _readable(shown)


async def test_codec_server_without_keys_is_one_line_exit_2(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENTFLOW_ENCRYPTION_KEYS", raising=False)
    code, out, err = await cli(capsys, "codec-server", "--port", "0")
    assert code == 2 and out == ""
    assert err.startswith("agentflow: error: no encryption keys were found: set ")
    assert len(err.splitlines()) == 1
