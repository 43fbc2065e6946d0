"""[payloads]: big inputs and states through the SDK's ExternalStorage, and what still fails."""

from __future__ import annotations

import hashlib
import importlib.util
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import StorageDriverRetrieveContext, StorageDriverStoreContext

from agentflow import Event, State
from agentflow.client.codec import new_key_entry
from agentflow.client.connection import connect_flow
from agentflow.client.payloads import FileSystemDriver, PayloadStoreError, on_this_machine
from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, PayloadsConfig, parse_config
from agentflow.errors import ConfigError
from agentflow.inspect.trace.read import trace
from agentflow.models.flow import FlowFailedError
from tests.conftest import REPO, running_worker

MB = 1024 * 1024
GROW = "tests.test_payload_storage:grow"


def grow(event: Event, state: State) -> dict[str, Any]:
    """Adds data["grow_bytes"] bytes under the agent's name; reports the sizes it was given."""
    seen = {key: len(value) for key, value in state.data.items() if isinstance(value, str)}
    return {event.target_agent: "y" * int(state.data.get("grow_bytes", 0)), "seen": seen}


def _config(
    client: Client, payloads: dict[str, Any] | None, *, local: bool = False, **extra: Any
) -> FlowConfig:
    raw: dict[str, Any] = {
        "agent_flow": {"name": f"big-{uuid.uuid4().hex[:8]}"},
        "orchestration": {"mode": "sequential", "sequential_agents": ["a", "b"],
                          "retry_attempts": 0, "local_agents": local},
        "agents": {"a": {"handler": GROW}, "b": {"handler": GROW}},
        "temporal": {"address": client.service_client.config.target_host},
        **extra,
    }  # fmt: skip
    if payloads is not None:
        raw["payloads"] = payloads
    return parse_config(raw, base_dir=REPO, check_handlers=True)


async def _run(config: FlowConfig, data: dict[str, Any]) -> tuple[Client, Any]:
    flow_client = await connect_flow(config)
    async with running_worker(flow_client, config) as task_queue:
        handle = await Runner(config, flow_client, task_queue).start(data)
        try:
            return flow_client, (await handle.result(), handle.workflow_id)
        except FlowFailedError as err:
            return flow_client, (err, handle.workflow_id)


def _blobs(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


# --- the filesystem driver ----------------------------------------------------------------


async def test_filesystem_blobs_are_content_addressed_and_checked(tmp_path: Path) -> None:
    driver = FileSystemDriver(tmp_path, max_bytes=MB)
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b'"' + b"x" * 1000 + b'"')
    store, retrieve = StorageDriverStoreContext(), StorageDriverRetrieveContext()
    [claim] = await driver.store(store, [payload])
    [again] = await driver.store(store, [payload])  # same bytes: same blob, written once
    assert claim == again and len(_blobs(tmp_path)) == 1
    assert claim.claim_data["sha256"] == hashlib.sha256(payload.SerializeToString()).hexdigest()
    assert await driver.retrieve(retrieve, [claim]) == [payload]
    [blob] = _blobs(tmp_path)
    blob.write_bytes(b"tampered")
    with pytest.raises(PayloadStoreError, match="does not match its checksum"):
        await driver.retrieve(retrieve, [claim])
    blob.unlink()
    with pytest.raises(PayloadStoreError, match=r"is missing from .*another \[payloads\] path"):
        await driver.retrieve(retrieve, [claim])
    big = Payload(data=b"z" * (MB + 1))
    with pytest.raises(PayloadStoreError, match=r"over \[payloads\] max_bytes"):
        await driver.store(store, [big])


def test_cloud_stores_need_a_bucket() -> None:
    with pytest.raises(ValueError, match='storage = "s3" needs bucket'):
        PayloadsConfig(storage="s3")
    assert PayloadsConfig(storage="gcs", bucket="b").bucket == "b"


async def test_a_cloud_store_without_its_package_is_one_clear_error(client: Client) -> None:
    pytest.importorskip("temporalio.contrib.aws.s3driver")
    if importlib.util.find_spec("aioboto3") is not None:
        pytest.skip("aioboto3 is installed here")
    config = _config(client, {"storage": "s3", "bucket": "flows"})
    expected = r"needs the SDK's s3 driver packages: pip install 'agentflow\[s3\]'"
    with pytest.raises(ConfigError, match=expected):
        await connect_flow(config)


# --- end to end against the dev server ----------------------------------------------------


async def test_ten_megabytes_of_input_and_of_state_run_end_to_end(
    client: Client, tmp_path: Path
) -> None:
    store = tmp_path / "payloads"
    config = _config(client, {"path": str(store)})
    data = {"input_blob": "x" * (10 * MB), "grow_bytes": 10 * MB}
    flow_client, (result, workflow_id) = await _run(config, data)
    assert result.status == "completed", result
    assert result.state.data["seen"] == {"input_blob": 10 * MB, "a": 10 * MB}  # b saw a's 10 MB
    assert len(result.state.data["b"]) == 10 * MB
    # History holds references only; the data is in the store.
    history = await flow_client.get_workflow_handle(workflow_id).fetch_history()
    largest = max(event.ByteSize() for event in history.events)
    assert largest < 64 * 1024, largest
    assert sum(blob.stat().st_size for blob in _blobs(store)) > 30 * MB
    # trace reads the stored payloads back through the same converter.
    entries = await trace(flow_client, workflow_id)
    completed = [entry.agent for entry in entries if entry.action == "completed"]
    assert completed == ["a", "b", ""]  # "": the flow itself


async def test_stored_blobs_are_encrypted_too(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTFLOW_ENCRYPTION_KEYS", new_key_entry("k1"))
    store = tmp_path / "payloads"
    marker = f"MARK-{uuid.uuid4().hex}"
    config = _config(client, {"path": str(store), "threshold_bytes": 1024},
                     security={"encrypt": True})  # fmt: skip
    _, (result, _) = await _run(config, {"input_blob": marker * 1000, "grow_bytes": 0})
    assert result.status == "completed"
    blobs = _blobs(store)
    assert blobs and not any(marker.encode() in blob.read_bytes() for blob in blobs)
    # The control: without encryption, the same blobs hold the marker in the clear.
    plain = _config(client, {"path": str(tmp_path / "plain"), "threshold_bytes": 1024})
    await _run(plain, {"input_blob": marker * 1000, "grow_bytes": 0})
    assert any(marker.encode() in blob.read_bytes() for blob in _blobs(tmp_path / "plain"))


async def test_the_dev_server_stores_by_default_and_none_turns_it_off(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test server is a dev server on 127.0.0.1: without a [payloads] table, the filesystem
    # store under .agentflow/payloads (of the working directory) is on, for client and worker.
    monkeypatch.chdir(tmp_path)
    flow_client, (result, workflow_id) = await _run(_config(client, None), {"grow_bytes": 3 * MB})
    assert result.status == "completed", result
    assert len(result.state.data["b"]) == 3 * MB
    assert sum(blob.stat().st_size for blob in _blobs(tmp_path / ".agentflow" / "payloads")) > (
        3 * MB
    )
    history = await flow_client.get_workflow_handle(workflow_id).fetch_history()
    assert max(event.ByteSize() for event in history.events) < 64 * 1024
    # storage = "none" turns it off: a big state fails at once, naming the agent and the fix.
    _, (error, _) = await _run(_config(client, {"storage": "none"}), {"grow_bytes": 3 * MB})
    assert isinstance(error, FlowFailedError)
    assert "agent 'a'" in str(error) and "or set a [payloads] store" in str(error)


def test_only_a_server_on_this_machine_gets_the_default_store() -> None:
    # The address is half of it (agentflow/payloads.py embedded_dev_server); the server's
    # SQLite persistence, asked over gRPC, is the other half (the test above).
    assert all(map(on_this_machine, ["localhost:7233", "127.0.0.1:7300", "[::1]:7233"]))
    elsewhere = ["temporal.prod:7233", "ns.acct.tmprl.cloud:7233", "10.0.0.5:7233",
                 "localhost.example.com:7233"]  # fmt: skip
    assert not any(map(on_this_machine, elsewhere))


async def test_a_state_over_max_bytes_fails_naming_the_limit(
    client: Client, tmp_path: Path
) -> None:
    config = _config(client, {"path": str(tmp_path), "max_bytes": 2 * MB})
    _, (error, _) = await _run(config, {"grow_bytes": 3 * MB})
    assert isinstance(error, FlowFailedError)
    assert "the [payloads] store takes at most 2.1 MB (max_bytes)" in str(error)


async def test_local_agents_keep_their_limit_with_a_store(client: Client, tmp_path: Path) -> None:
    config = _config(client, {"path": str(tmp_path)}, local=True)
    _, (error, _) = await _run(config, {"grow_bytes": MB})
    assert isinstance(error, FlowFailedError)
    assert "agents with local = true are limited to 256 KB" in str(error)
