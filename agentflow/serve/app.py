"""The ASGI app of ``agentflow serve``: CloudEvents in, the REST API, the stream, the console.

Every handler reads from or writes to Temporal through the client layer and ``inspect``, as
the CLI does. Errors are RFC 9457 problem bodies (``problems.py``); a body over the limit is
refused with 413 before it is read; an unexpected error is a 500 problem whose traceback goes
to the log without the request's data.
"""

from __future__ import annotations

import logging
import traceback

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentflow.errors import AgentflowError
from agentflow.serve import api, events, openapi, runs, stream
from agentflow.serve.console import routes as console_routes
from agentflow.serve.context import ServeContext
from agentflow.serve.problems import Problem, from_error, problem_response

__all__ = ["create_app"]

log = logging.getLogger("agentflow.serve")


def create_app(context: ServeContext) -> Starlette:
    """The app for ``context`` (``app.state.context``); the console is mounted at ``/ui``."""
    routes: list[BaseRoute] = [
        Route("/", _home),
        *events.routes(),
        *api.routes(),
        *runs.routes(),
        *stream.routes(),
        *openapi.routes(),
        Mount("/ui", routes=console_routes()),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            Problem: _problem,
            AgentflowError: _problem,
            HTTPException: _http_error,
        },
    )
    app.state.context = context
    app.add_middleware(BodyLimit, limit=context.max_body_bytes)
    app.add_middleware(CatchAll)  # outermost of ours: sees what the handlers above did not
    return app


async def _home(request: Request) -> Response:
    return RedirectResponse("/ui/", status_code=307)


async def _problem(request: Request, exc: Exception) -> Response:
    problem = exc if isinstance(exc, Problem) else from_error(exc)
    return problem_response(problem, request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else ""
    problem = Problem(status, detail or f"{request.method} {request.url.path}")
    if status == 405:
        problem.headers = dict(getattr(exc, "headers", None) or {})
    return problem_response(problem, request.url.path)


class CatchAll:
    """Any other error: a problem body (a 500, or the status ``from_error`` gives it), and
    at ERROR in the log the error's type and frames, never its message, which may quote the
    request's data. (Starlette's own last handler re-raises, and the server would log it.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            problem = from_error(exc)
            if problem.status >= 500:
                frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
                log.error("%s %s failed with %s:\n%s", scope.get("method"), scope.get("path"),
                          type(exc).__name__, frames)  # fmt: skip
            if not started:
                await problem_response(problem, scope.get("path"))(scope, receive, send)


class BodyLimit:
    """413 for a request body over ``limit`` bytes: at once when Content-Length says so, else
    as soon as the body read so far passes it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._too_large(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise self.problem()
            return message

        await self.app(scope, limited, send)

    def problem(self) -> Problem:
        return Problem(413, f"the request body is over {self.limit} bytes "
                       "(agentflow serve --max-body-bytes)")  # fmt: skip

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(self.problem(), scope.get("path"))
        await response(scope, receive, send)
