"""The console: server-rendered pages for people, mounted by ``app.py`` at ``/ui``.

Signing in takes an API key (the same keys as the REST API): the server answers with an
HttpOnly, SameSite=Strict cookie that holds the key and an expiry, encrypted and authenticated
under the keys' signing secret, so any server of the same keys reads it (nothing is stored).
Each request looks the key up again: a key taken out of the server's list signs its cookie out
at once. Every state-changing form carries a CSRF token, an HMAC of the cookie, checked on POST
with the ``Origin`` header. Under ``--insecure-local`` nobody signs in: the local admin acts.

Errors render as a page with the status and one sentence, never a traceback (which goes to the
log). The pages are in ``console_pages.py``, the forms' handlers in ``console_actions.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from agentflow.serve import console_actions as actions
from agentflow.serve import console_pages as pages
from agentflow.serve.auth import Action, Principal
from agentflow.serve.console_html import Page, e, error_page, layout
from agentflow.serve.context import ServeContext
from agentflow.serve.problems import Problem, from_error

__all__ = ["COOKIE", "csrf_token", "routes"]

log = logging.getLogger("agentflow.serve.console")

COOKIE = "agentflow_console"
SIGNED_IN_SECONDS = 12 * 3600
STATIC = Path(__file__).parent / "static"
# Every page's policy: scripts and styles from this server only (Mermaid draws its SVG with
# inline styles), no framing.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")  # fmt: skip

Handler = Callable[[Request, Page], Awaitable[Response]]


def routes() -> list[BaseRoute]:
    """The console's routes, relative to where it is mounted (``/ui``)."""
    read, decide, admin = Action.READ, Action.DECIDE, Action.ADMIN
    return [
        Route("/", _home),
        Route("/sign-in", _sign_in_form, methods=["GET"]),
        Route("/sign-in", _sign_in, methods=["POST"]),
        Route("/sign-out", guarded(read, _sign_out), methods=["POST"]),
        Route("/approvals", guarded(read, pages.approvals_page)),
        Route("/approvals/decide", guarded(decide, actions.decide), methods=["POST"]),
        Route("/sessions", guarded(read, pages.sessions_page)),
        Route("/sessions/close", guarded(admin, actions.close), methods=["POST"]),
        Route("/sessions/{flow}/{session:path}", guarded(read, pages.session_page)),
        Route("/dead-letters", guarded(read, pages.letters_page)),
        Route("/dead-letters/redrive", guarded(admin, actions.redrive), methods=["POST"]),
        Route("/dead-letters/purge", guarded(admin, actions.purge), methods=["POST"]),
        Route("/dead-letters/{letter:path}", guarded(read, pages.letter_page)),
        Route("/runs/{workflow_id:path}", guarded(read, pages.run_page)),
        Route("/stream/{workflow_id:path}", guarded(read, actions.stream)),
        Mount("/static", app=StaticFiles(directory=STATIC), name="console-static"),
    ]


def guarded(action: Action, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` for a signed-in person whose role allows ``action``; on POST, only with a
    valid CSRF token. Any error becomes an error page."""

    async def endpoint(request: Request) -> Response:
        page: Page | None = None
        try:
            page = signed_in(request)
            if page is None:
                if request.method == "GET":
                    target = quote(request.url.path + _query(request), safe="/")
                    return RedirectResponse(f"/ui/sign-in?next={target}", status_code=303)
                raise Problem(401, "sign in first: your session ended or was never started")
            if not page.may(action):
                raise Problem(403, f"{page.who.name!r} has role {page.who.role!r}, which may "
                              f"not {action.value}")  # fmt: skip
            if request.method == "POST":
                await _check_csrf(request, page)
            response = await handler(request, page)
        except Exception as exc:
            response = error_response(exc, page)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return endpoint


def _query(request: Request) -> str:
    return f"?{request.url.query}" if request.url.query else ""


# --- signing in -------------------------------------------------------------------------------


def _context(request: Request) -> ServeContext:
    context: ServeContext = request.app.state.context
    return context


def _mac(secret: bytes, purpose: str, value: str) -> str:
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _cookie_key(secret: bytes) -> AESGCM:
    return AESGCM(hashlib.sha256(b"agentflow console cookie:" + secret).digest())


def seal(secret: bytes, token: str, now: float | None = None) -> str:
    """The cookie for ``token``: the key and its expiry, encrypted and authenticated
    (AES-GCM under a key derived from the signing secret), so the cookie neither shows the
    key nor can be altered."""
    expires = int((time.time() if now is None else now) + SIGNED_IN_SECONDS)
    nonce = os.urandom(12)
    sealed = _cookie_key(secret).encrypt(nonce, f"{expires}:{token}".encode(), COOKIE.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def unseal(secret: bytes, cookie: str) -> str | None:
    """The key in a cookie ``seal`` made, if it is intact and has not expired."""
    try:
        raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
        plain = _cookie_key(secret).decrypt(raw[:12], raw[12:], COOKIE.encode()).decode()
    except (ValueError, InvalidTag):
        return None
    expires, _, token = plain.partition(":")
    if not expires.isdigit() or int(expires) < time.time():
        return None
    return token


def csrf_token(secret: bytes, cookie: str) -> str:
    """The CSRF token of the forms of a signed-in browser: an HMAC of its cookie."""
    return _mac(secret, "csrf", cookie)


def signed_in(request: Request) -> Page | None:
    """Who this browser is signed in as (None: nobody, or a key no longer known)."""
    context = _context(request)
    secret = context.keys.signing_secret()
    if context.insecure_local:
        return Page(Principal("local", "admin"), csrf_token(secret, "insecure-local"), False)
    cookie = request.cookies.get(COOKIE, "")
    token = unseal(secret, cookie) if cookie else None
    who = context.keys.lookup(token) if token else None
    return Page(who, csrf_token(secret, cookie), True) if who else None


async def _check_csrf(request: Request, page: Page | None) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Problem(403, f"a form posted from another site ({origin}) is refused")
    if page is None:
        return
    sent = (await request.form()).get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, page.csrf):
        raise Problem(403, "the form's CSRF token is missing or wrong: reload the page and "
                      "send it again")  # fmt: skip


async def _home(request: Request) -> Response:
    return RedirectResponse("/ui/approvals", status_code=303)


def _sign_in_page(next_url: str, problem: str = "") -> str:
    error = f'<p class="error">{e(problem)}</p>' if problem else ""
    body = f"""{error}<form method="post" action="/ui/sign-in" class="sign-in">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{e(next_url)}">
<button>Sign in</button></form>
<p class="hint">The same keys as the REST API (<code>AGENTFLOW_API_KEYS</code> or
<code>--keys-file</code>); the role of yours decides what you may do here.</p>"""
    return layout("Sign in", body, None)


def _safe_next(value: object) -> str:
    text = value if isinstance(value, str) else ""
    return text if text.startswith("/ui/") and "//" not in text and "\\" not in text else "/ui/"


async def _sign_in_form(request: Request) -> Response:
    if _context(request).insecure_local:
        return RedirectResponse("/ui/", status_code=303)
    html = _sign_in_page(_safe_next(request.query_params.get("next")))
    return HTMLResponse(html, headers={"Content-Security-Policy": CSP})


async def _sign_in(request: Request) -> Response:
    try:
        await _check_csrf(request, None)  # no cookie yet: the Origin check only
        form = await request.form()
    except Exception as exc:
        return error_response(exc, None)
    key, next_url = form.get("key"), _safe_next(form.get("next"))
    context = _context(request)
    who = context.keys.lookup(key.strip()) if isinstance(key, str) and key.strip() else None
    if who is None or not isinstance(key, str):
        html = _sign_in_page(next_url, "That key is not known to this server.")
        return HTMLResponse(html, status_code=401, headers={"Content-Security-Policy": CSP})
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        COOKIE, seal(context.keys.signing_secret(), key.strip()), max_age=SIGNED_IN_SECONDS,
        path="/ui", httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    log.info("console: %s (%s) signed in", who.name, who.role)
    return response


async def _sign_out(request: Request, page: Page) -> Response:
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response


# --- errors -----------------------------------------------------------------------------------


def error_response(exc: Exception, page: Page | None) -> Response:
    """The error page for ``exc``: its status, a title and one sentence; an unexpected error
    (500) logs its type and frames, never its message (it may quote the request's data)."""
    problem = from_error(exc)
    status, detail, title = problem.status, problem.detail, problem.title
    if status == 500 and not isinstance(exc, Problem):
        frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
        log.error("console request failed with %s:\n%s", type(exc).__name__, frames)
    return HTMLResponse(error_page(status, title, detail, page), status, problem.headers or None)
