"""The Temporal UI, in a real headless Chromium, shows an encrypted run decoded (through
``agentflow codec-server`` and its bearer token) and its agents by name on the event rows.

Needs Debian's chromium (``/usr/bin/chromium``), which ``make test`` installs as root (``make
ui-test`` installs it and runs this test alone); without it the test skips, saying so.
Chromium is driven over its DevTools protocol (a websocket, tests/_chromium.py): no browser
download. The assertions read the page's text, not pixels; the
screenshot is kept as an artifact, ``.agentflow/ui-screenshot.png``.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from pathlib import Path

import pytest

from agentflow.client.codec import new_key_entry
from agentflow.client.connection import connect_flow
from agentflow.client.runner import Runner
from agentflow.models.flow import FlowFailedError
from agentflow.worker.devserver_process import DevServer
from tests._chromium import (
    CHROMIUM,
    SKIP_REASON,
    DevTools,
    chromium,
    free_port,
    wait_for_text,
)
from tests.conftest import REPO, codec_server, flow_config, running_worker

SCREENSHOT = REPO / ".agentflow" / "ui-screenshot.png"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)


async def test_ui_shows_a_decrypted_run_and_its_agents_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = secrets.token_urlsafe(16)
    monkeypatch.setenv("AGENTFLOW_ENCRYPTION_KEYS", new_key_entry("ui-key"))
    monkeypatch.setenv("AGENTFLOW_CODEC_TOKEN", token)
    port, ui_port = free_port(), free_port()
    ui = f"http://localhost:{ui_port}"
    agents = {
        "a": "tests.agents:append",
        "b": {"handler": "tests.agents:append", "local": True},
        "c": "tests.agents:fatal",
    }
    config = flow_config(
        "mixed", agents, collaborative_agents=["a", "b"], sequential_agents=["c"],
        tables={"security": {"encrypt": True, "ui_origins": [ui]},
                "temporal": {"address": f"127.0.0.1:{port}"}},
    )  # fmt: skip
    marker = f"plaintext-{uuid.uuid4().hex[:12]}"
    with codec_server(config.security) as codec:
        server = DevServer(port=port, ui_port=ui_port, db=tmp_path / "temporal.db",
                           ui_codec_endpoint=codec.url, log=tmp_path / "server.log")  # fmt: skip
        with server:
            client = await connect_flow(config)
            async with running_worker(client, config) as queue:
                handle = await Runner(config, client, queue).start({"note": marker})
                with pytest.raises(FlowFailedError, match="agent 'c'"):
                    await handle.result()
            page_url = f"{ui}/namespaces/default/workflows/{handle.workflow_id}/{handle.run_id}"
            with chromium(tmp_path / "profile") as address:
                async with DevTools.page(address) as page:
                    # As a proxy in front of the UI would: the codec server wants the token.
                    await page.call("Network.enable")
                    await page.call("Network.setExtraHTTPHeaders",
                                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                    await page.call("Page.navigate", url=f"{page_url}/history")
                    # Decoded, which the server holds only encrypted (an undecoded payload
                    # shows its "encryption-cipher"): the input card (the flow's config), the
                    # failure in the result card, the input's own words in an agent's result.
                    # Named: each activity row shows its agent's type, agent:NAME; a local
                    # agent's row is a "Local Activity" with the agent as its summary.
                    wanted = ['"agent_flow"', "agent 'c' (step 1 of 1) failed", marker,
                              "agent:a", "agent:b", "agent:c", "Local Activity"]  # fmt: skip
                    text = await wait_for_text(page, wanted, unwanted="encryption-cipher")
                    shot = await page.call("Page.captureScreenshot", format="png")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    SCREENSHOT.with_suffix(".txt").write_text(text, encoding="utf-8")  # what was asserted on
    rows = text.split("Event History")[-1]
    assert rows.index("agent:c") < rows.index("agent:a")  # newest first: c ran after a
