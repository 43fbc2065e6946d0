"""The Temporal UI, in a real headless Chromium, shows an encrypted run decoded (through
``agentflow codec-server`` and its bearer token) and its agents by name on the event rows.

Needs Debian's chromium (``/usr/bin/chromium``); ``make ui-test`` installs it and runs this
test, which otherwise skips, saying so. Chromium is driven over its DevTools protocol (a
websocket): no browser download. The assertions read the page's text, not pixels; the
screenshot is kept as an artifact, ``.agentflow/ui-screenshot.png``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from agentflow.client.codec import new_key_entry
from agentflow.client.connection import connect_flow
from agentflow.client.runner import Runner
from agentflow.models.flow import FlowFailedError
from agentflow.worker.devserver_process import DevServer
from tests.conftest import REPO, codec_server, flow_config, running_worker

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = REPO / ".agentflow" / "ui-screenshot.png"
# How chromium runs on a machine with a closed network (no background calls home).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1600,2200", "--remote-debugging-port=0",
]  # fmt: skip
PAGE_TIMEOUT = 90.0

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed: `make ui-test` installs Debian's chromium and runs this",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _chromium(profile: Path) -> Iterator[str]:
    """Headless chromium with a fresh profile; yields its DevTools address (host:port)."""
    assert CHROMIUM is not None
    process = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        active = profile / "DevToolsActivePort"  # chromium writes its port here
        deadline = time.monotonic() + 30
        while not (active.exists() and active.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit {process.poll()})")
            time.sleep(0.1)
        yield f"127.0.0.1:{active.read_text().split()[0]}"
    finally:
        process.kill()
        process.wait()


class DevTools:
    """Just enough of the DevTools protocol: call a method, wait for its answer."""

    def __init__(self, socket: Any) -> None:
        self.socket, self.calls = socket, 0

    @classmethod
    @contextlib.asynccontextmanager
    async def page(cls, address: str) -> AsyncIterator[DevTools]:
        targets = await asyncio.to_thread(_get_json, f"http://{address}/json/list")
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with websockets.connect(url, max_size=None) as socket:
            yield cls(socket)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        call_id = self.calls
        await self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:  # events arrive in between; only our answer matters
            message = json.loads(await self.socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def text(self) -> str:
        found = await self.call("Runtime.evaluate", expression="document.body.innerText",
                                returnByValue=True)  # fmt: skip
        value = found.get("result", {}).get("value")
        return value if isinstance(value, str) else ""


def _get_json(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


async def _wait_for_text(page: DevTools, wanted: list[str], unwanted: str) -> str:
    """The page's text once it shows everything ``wanted`` and no ``unwanted`` (the UI renders
    as data arrives, and decodes payloads a card at a time)."""
    deadline = time.monotonic() + PAGE_TIMEOUT
    text = ""
    while time.monotonic() < deadline:
        text = await page.text()
        if all(word in text for word in wanted) and unwanted not in text:
            return text
        await asyncio.sleep(0.5)
    missing = [word for word in wanted if word not in text]
    raise AssertionError(
        f"the UI never showed {missing} (or kept showing {unwanted!r}); it showed:\n{text[:3000]}"
    )


async def test_ui_shows_a_decrypted_run_and_its_agents_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = secrets.token_urlsafe(16)
    monkeypatch.setenv("AGENTFLOW_ENCRYPTION_KEYS", new_key_entry("ui-key"))
    monkeypatch.setenv("AGENTFLOW_CODEC_TOKEN", token)
    port, ui_port = _free_port(), _free_port()
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
            with _chromium(tmp_path / "profile") as address:
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
                    text = await _wait_for_text(page, wanted, unwanted="encryption-cipher")
                    shot = await page.call("Page.captureScreenshot", format="png")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    SCREENSHOT.with_suffix(".txt").write_text(text, encoding="utf-8")  # what was asserted on
    rows = text.split("Event History")[-1]
    assert rows.index("agent:c") < rows.index("agent:a")  # newest first: c ran after a
