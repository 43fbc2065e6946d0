"""Debian's headless chromium, driven over its DevTools protocol (a websocket): no browser
download, no driver. Used by the browser tests (tests/test_ui_screenshot.py,
tests/test_console.py), which skip without chromium; ``make test`` installs it as root."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SKIP_REASON = "chromium is not installed: `make test` (as root) or `make ui-test` installs it"
# How chromium runs on a machine with a closed network (no background calls home).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1600,2200", "--remote-debugging-port=0",
]  # fmt: skip
PAGE_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def chromium(profile: Path, *flags: str) -> Iterator[str]:
    """Headless chromium with a fresh profile; yields its DevTools address (host:port)."""
    assert CHROMIUM is not None
    process = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, *flags, f"--user-data-dir={profile}", "about:blank"],
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
        targets = await asyncio.to_thread(get_json, f"http://{address}/json/list")
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

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (None if it threw)."""
        found = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return found.get("result", {}).get("value")

    async def text(self) -> str:
        value = await self.evaluate("document.body ? document.body.innerText : ''")
        return value if isinstance(value, str) else ""


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


async def wait_for_text(page: DevTools, wanted: list[str], unwanted: str = "\0") -> str:
    """The page's text once it shows everything ``wanted`` and no ``unwanted`` (pages render
    as data arrives)."""
    deadline = time.monotonic() + PAGE_TIMEOUT
    text = ""
    while time.monotonic() < deadline:
        text = await page.text()
        if all(word in text for word in wanted) and unwanted not in text:
            return text
        await asyncio.sleep(0.25)
    missing = [word for word in wanted if word not in text]
    raise AssertionError(
        f"the page never showed {missing} (or kept showing {unwanted!r}); it showed:\n{text[:3000]}"
    )
