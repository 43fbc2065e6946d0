"""``agentflow serve`` with ``[security] encrypt = true``: the server's client decrypts what it
shows with the flow's keys, Temporal holds only ciphertext, and the log never the plaintext."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from agentflow.client.codec import new_key_entry
from agentflow.client.connection import connect_flow
from agentflow.config import parse_config
from agentflow.names import session_workflow_id
from agentflow.serve.app import create_app
from agentflow.serve.auth import ApiKeys
from agentflow.serve.context import ServeContext
from agentflow.worker.serve import serving
from tests.conftest import REPO

TOKEN = f"admin-{uuid.uuid4().hex}"


async def test_an_encrypted_flow_is_read_in_plaintext_and_stored_sealed(
    client: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = tmp_path / "keys"
    keys.write_text(new_key_entry("k1") + "\n")
    name, secret, session = f"srv-enc-{uuid.uuid4().hex[:6]}", f"S-{uuid.uuid4().hex}", "s1"
    config = parse_config({
        "agent_flow": {"name": name},
        "orchestration": {"mode": "sequential", "sequential_agents": ["remember"]},
        "agents": {"remember": {"handler": "tests.event_agents:remember"}},
        "temporal": {"address": client.service_client.config.target_host,
                     "task_queue": f"{name}-q"},
        "security": {"encrypt": True, "key_file": str(keys)},
    }, base_dir=REPO, check_handlers=True)  # fmt: skip
    context = ServeContext({name: config}, ApiKeys({"ops": ("admin", TOKEN)}))
    transport = httpx.ASGITransport(app=create_app(context))
    async with serving(await connect_flow(config), [(config, REPO)]), httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as http:  # fmt: skip
        event = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "/t", "type": "t",
                 "target": "remember", "subject": session, "data": {"msg": secret}}  # fmt: skip
        response = await http.post(
            "/events",
            content=json.dumps(event),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert response.status_code == 202, response.text
        async with asyncio.timeout(30):
            while True:
                view = (await http.get(f"/flows/{name}/sessions/{session}")).json()
                if view["counts"]["completed"] == 1:
                    break
                await asyncio.sleep(0.1)
    assert view["context"]["history"] == [secret]  # decrypted by the server's client
    # The server's own history, read without the keys: every payload sealed.
    history = await client.get_workflow_handle(session_workflow_id(name, session)).fetch_history()
    signals = [e.workflow_execution_signaled_event_attributes.input.payloads
               for e in history.events
               if e.HasField("workflow_execution_signaled_event_attributes")]  # fmt: skip
    assert signals and all(p.metadata["encoding"] == b"binary/encrypted"
                           for payloads in signals for p in payloads)  # fmt: skip
    blobs = [base64.b64decode(b) for b in re.findall(r'"data": "([A-Za-z0-9+/=]+)"',
                                                      history.to_json())]  # fmt: skip
    assert blobs and not any(secret.encode() in blob for blob in blobs)
    assert secret not in caplog.text
