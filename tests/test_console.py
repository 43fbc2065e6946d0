"""The console (``agentflow serve``'s pages under /ui), in a real headless chromium against the
real app on uvicorn, a real dev server and a real worker: a person signs in with a key, approves
a waiting agent and sees the run go on, and redrives a dead letter. The refusals (no key, a
wrong key, a role that may not, a missing or foreign CSRF token) are checked with httpx.

The screenshots are kept as artifacts (not committed): ``.agentflow/console-approvals.png``,
``console-run.png``, ``console-dead-letters.png``, ``console-dead-letter.png`` and
``console-session.png``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from temporalio.client import Client

from agentflow.client import sessions
from agentflow.client.runner import Runner
from agentflow.config import FlowConfig
from agentflow.serve.app import create_app
from agentflow.serve.auth import ApiKeys
from agentflow.serve.context import ServeContext
from tests._chromium import CHROMIUM, SKIP_REASON, DevTools, chromium, free_port, wait_for_text
from tests.conftest import REPO, flow_config, running_worker

APPEND = "tests.agents:append"
ADMIN, APPROVER, VIEWER = (f"{role}-{uuid.uuid4().hex}" for role in ("admin", "approver", "viewer"))
KEYS = {"ada": ("admin", ADMIN), "bob": ("approver", APPROVER), "val": ("viewer", VIEWER)}
SHOTS = REPO / ".agentflow"
WAIT_SECONDS = 30.0


def _flows(client: Client) -> tuple[FlowConfig, FlowConfig]:
    """A run whose ``review`` waits for approval after it ran, then ``publish``; and a session
    flow whose ``check`` fails while a file exists (a dead letter, redriven once it is gone)."""
    tag = uuid.uuid4().hex[:8]
    temporal = {"temporal": {"address": client.service_client.config.target_host}}
    review = flow_config(
        "sequential", {"review": {"handler": APPEND, "approval": "after"}, "publish": APPEND},
        sequential_agents=["review", "publish"],
        tables={**temporal, "agent_flow": {"name": f"console-review-{tag}"}},
    )  # fmt: skip
    letters = flow_config(
        "sequential", {"remember": "tests.event_agents:remember",
                       "check": "tests.event_agents:check"},
        sequential_agents=["remember", "check"],
        tables={**temporal, "agent_flow": {"name": f"console-letters-{tag}"}},
    )  # fmt: skip
    return review, letters


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """``app`` on uvicorn on a free port of 127.0.0.1, in this event loop; yields its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", timeout_graceful_shutdown=5)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()  # raises why it could not start
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _until_shown(page: DevTools, url: str, wanted: list[str]) -> str:
    """Load ``url`` until its text shows all of ``wanted`` (visibility catches up with what
    the server recorded a moment later; the pages are rendered on the server)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        await page.call("Page.navigate", url=url)
        await _wait_for_js(page, "document.readyState === 'complete'")
        text = await page.text()
        if all(word in text for word in wanted):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never showed {wanted}; it showed:\n{text[:3000]}")
        await asyncio.sleep(0.25)  # between polls of Temporal through the page


async def _screenshot(page: DevTools, name: str) -> None:
    shot = await page.call("Page.captureScreenshot", format="png")
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / name).write_bytes(base64.b64decode(shot["data"]))


def _click_form_button(form_action: str, field: str, value: str, button: str = "") -> str:
    """JavaScript: click ``button`` (a value, or the first) of the form posting to
    ``form_action`` whose hidden ``field`` is ``value``; true if it found one."""
    return f"""(() => {{
      for (const form of document.querySelectorAll('form[action="{form_action}"]')) {{
        const input = form.querySelector('input[name="{field}"]');
        if (!input || input.value !== {json.dumps(value)}) continue;
        const buttons = [...form.querySelectorAll('button')];
        const pick = buttons.find(b => b.value === {json.dumps(button)}) || buttons[0];
        pick.click();
        return true;
      }}
      return false;
    }})()"""


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
async def test_sign_in_approve_and_redrive_in_a_browser(client: Client, tmp_path: Path) -> None:
    review, letters = _flows(client)
    context = ServeContext({review.name: review, letters.name: letters}, ApiKeys(KEYS))
    block = tmp_path / "block"
    block.touch()
    session = f"s-{uuid.uuid4().hex[:10]}"
    async with (
        running_worker(client, review, letters) as queue,
        serving(create_app(context)) as base,
    ):
        run = await Runner(review, client, queue).start({"trail": []})
        event = sessions.new_event(letters, {"msg": "x", "block_file": str(block)},
                                   session_id=session, event_id="ev-1")  # fmt: skip
        emitted = await sessions.emit(client, letters, queue, event, wait=True)
        letter = (await emitted.outcome()).dead_letter_id
        assert letter, "the event should have become a dead letter"

        with chromium(tmp_path / "profile") as address:
            async with DevTools.page(address) as page:
                await page.call("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                                deviceScaleFactor=1, mobile=False)  # fmt: skip
                # Not signed in: the inbox sends the browser to sign in, then back.
                await page.call("Page.navigate", url=f"{base}/ui/approvals")
                await wait_for_text(page, ["API key", "Sign in"])
                await page.evaluate(
                    f"document.getElementById('key').value = {json.dumps(ADMIN)};"
                    "document.querySelector('form.sign-in button').click()"
                )
                await wait_for_text(page, ["Approvals", "ada", "admin"])

                # The inbox shows the waiting agent, with its output and how long it waits.
                text = await _until_shown(page, f"{base}/ui/approvals",
                                          [run.workflow_id, "review", "waiting"])  # fmt: skip
                assert '"trail"' in text and "after" in text
                await _screenshot(page, "console-approvals.png")
                await page.evaluate(
                    "for (const c of document.querySelectorAll('section.approval'))"
                    f"  if (c.textContent.includes({json.dumps(run.workflow_id)}))"
                    "    c.querySelector('textarea').value = 'fine by me';"
                )  # fmt: skip
                found = await page.evaluate(_click_form_button(
                    "/ui/approvals/decide", "workflow_id", run.workflow_id, "approve"))  # fmt: skip
                assert found is True
                await wait_for_text(page, [f"approved review in {run.workflow_id} (by ada)"])

                # The run goes on to its next agent: its page's live stream shows it.
                await page.call("Page.navigate", url=f"{base}/ui/runs/{run.workflow_id}")
                await wait_for_text(page, ["✓ publish completed", "(the run has ended)",
                                           "Temporal UI"])  # fmt: skip
                await _wait_for_js(page, "document.querySelector('.graph svg') !== null")
                await _screenshot(page, "console-run.png")
                result = await run.result()
                decided = {r.agent: r.approval for r in result.results}["review"]
                assert decided is not None
                assert (decided.decided_by, decided.comment) == ("ada", "fine by me")
                assert [r.agent for r in result.results] == ["review", "publish"]

                # A dead letter, redriven from the page once its cause is gone.
                block.unlink()
                await _until_shown(page, f"{base}/ui/dead-letters", [letter, "open"])
                await _screenshot(page, "console-dead-letters.png")
                found = await page.evaluate(_click_form_button(
                    "/ui/dead-letters/redrive", "letter", letter))  # fmt: skip
                assert found is True
                await wait_for_text(page, [f"redriven {letter} as event ev-1.r1",
                                           "redriven as event ev-1.r1 by ada"])  # fmt: skip
                await _screenshot(page, "console-dead-letter.png")
                # ...and its session processed it: the page of the session says so.
                await _until_shown(page, f"{base}/ui/sessions/{letters.name}/{session}",
                                   ["1 completed", "1 dead-lettered", '"x"'])  # fmt: skip
                await _screenshot(page, "console-session.png")
                # Another letter, purged from its own page.
                block.touch()
                event = sessions.new_event(letters, {"msg": "y", "block_file": str(block)},
                                           session_id=session, event_id="ev-2")  # fmt: skip
                emitted = await sessions.emit(client, letters, queue, event, wait=True)
                purged = (await emitted.outcome()).dead_letter_id
                assert purged
                await _until_shown(page, f"{base}/ui/dead-letters/{purged}", ["open", "Purge"])
                found = await page.evaluate(_click_form_button(
                    "/ui/dead-letters/purge", "letter", purged))  # fmt: skip
                assert found is True
                await wait_for_text(page, [f"purged {purged}", "purged by ada"])
                await _until_shown(page, f"{base}/ui/sessions", [session, letters.name, "running"])
                # The session's own page of trace, graph and stream: both its events.
                await page.call("Page.navigate", url=f"{base}/ui/runs/{emitted.workflow_id}")
                await wait_for_text(page, ["ev-1.r1", "dead-lettered", "Live stream"])
                await _wait_for_js(page, "document.querySelector('.graph svg') !== null")
                # An admin closes the session from its page.
                await page.call("Page.navigate",
                                url=f"{base}/ui/sessions/{letters.name}/{session}")  # fmt: skip
                await wait_for_text(page, ["Close session"])
                found = await page.evaluate(_click_form_button(
                    "/ui/sessions/close", "session", session))  # fmt: skip
                assert found is True
                await wait_for_text(page, [f"session {session} closes"])
                await _until_shown(page, f"{base}/ui/sessions/{letters.name}/{session}",
                                   ["closed by ada"])  # fmt: skip


async def _wait_for_js(page: DevTools, expression: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while await page.evaluate(expression) is not True:
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never made {expression} true")
        await asyncio.sleep(0.2)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def _sign_in(http: httpx.AsyncClient, key: str, next_url: str = "/ui/approvals") -> str:
    """Sign ``http`` in with ``key``; the CSRF token of the page it lands on."""
    reply = await http.post("/ui/sign-in", data={"key": key, "next": next_url})
    assert reply.status_code == 303 and reply.headers["location"] == next_url, reply.text
    return _csrf((await http.get(next_url)).text)


async def test_the_console_refuses_wrong_keys_roles_and_forms(client: Client) -> None:
    review, _ = _flows(client)
    context = ServeContext({review.name: review}, ApiKeys(KEYS))
    async with serving(create_app(context)) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            reply = await http.get("/ui/dead-letters?all=1")
            assert reply.status_code == 303
            assert reply.headers["location"] == "/ui/sign-in?next=/ui/dead-letters%3Fall%3D1"
            reply = await http.post("/ui/sign-in", data={"key": "not-a-key-of-this-server"})
            assert reply.status_code == 401 and "not known to this server" in unescape(reply.text)
            assert "set-cookie" not in reply.headers

            reply = await http.post("/ui/sign-in", data={"key": VIEWER, "next": "//evil/"})
            assert reply.headers["location"] == "/ui/"  # only pages of the console
            cookie = reply.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
            assert VIEWER not in cookie  # the key travels encoded and signed, not as typed
            page = (await http.get("/ui/dead-letters")).text
            assert "val" in page and "Redrive" not in page  # a viewer sees no admin buttons
            reply = await http.post("/ui/dead-letters/purge",
                                    data={"csrf": _csrf(page), "letter": "x"})  # fmt: skip
            assert reply.status_code == 403 and "'val' has role 'viewer'" in unescape(reply.text)
            assert "<html" in unescape(reply.text) and "Traceback" not in unescape(reply.text)
            viewer_csrf = _csrf(page)

        async with httpx.AsyncClient(base_url=base) as http:
            token = await _sign_in(http, APPROVER)
            form = {"workflow_id": "nothing-waits-here", "agent": "a", "decision": "approve"}
            for refused in ({}, {"csrf": viewer_csrf}):  # none, and another browser's
                reply = await http.post("/ui/approvals/decide", data={**form, **refused})
                assert reply.status_code == 403 and "CSRF token" in unescape(reply.text)
            reply = await http.post("/ui/approvals/decide", data={**form, "csrf": token},
                                    headers={"Origin": "http://elsewhere.example"})  # fmt: skip
            assert reply.status_code == 403 and "from another site" in unescape(reply.text)
            reply = await http.post("/ui/approvals/decide", data={**form, "csrf": token})
            assert reply.status_code == 404, reply.text
            assert "no run or session with workflow id 'nothing-waits-here'" in unescape(reply.text)
            reply = await http.post(
                "/ui/approvals/decide", data={**form, "csrf": token, "decision": "reject"}
            )
            assert reply.status_code == 422 and "say why" in unescape(
                reply.text
            )  # a reject needs one
            reply = await http.post(
                "/ui/sessions/close", data={"csrf": token, "flow": "f", "session": "s"}
            )
            assert reply.status_code == 403 and "which may not admin" in unescape(reply.text)

            reply = await http.post("/ui/sign-out", data={"csrf": token})
            assert reply.status_code == 303 and reply.headers["location"] == "/ui/sign-in"
            assert (await http.get("/ui/approvals")).status_code == 303

        async with httpx.AsyncClient(base_url=base, cookies={"agentflow_console": "x.1.y"}) as http:
            assert (await http.get("/ui/approvals")).status_code == 303  # a forged cookie

    local = ServeContext({review.name: review}, ApiKeys({}), insecure_local=True)
    async with serving(create_app(local)) as base, httpx.AsyncClient(base_url=base) as http:
        reply = await http.get("/ui/runs/no-such-run")
        assert reply.status_code == 404 and "no workflow or run with id 'no-such-run'" in unescape(
            reply.text
        )
        assert "local" in unescape(reply.text) and "Sign out" not in unescape(
            reply.text
        )  # nobody signs in
