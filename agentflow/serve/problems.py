"""Errors as RFC 9457 problem details, and the principal of a request.

A ``Problem`` raised anywhere in a handler becomes an ``application/problem+json`` body with
its status (the console renders the same exception as a page). Errors the library raises on
purpose map to problems here too (``from_error``); anything else is a 500 whose body says only
that the server failed, and whose traceback goes to the log, never the payload.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any, Protocol

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from temporalio.service import RPCError, RPCStatusCode

from agentflow import limits
from agentflow.errors import AgentflowError, ConfigError, NotFoundError, NoWorkerError
from agentflow.serve.auth import Action, ApiKeys, Principal


class _Serving(Protocol):  # what ServeContext offers here (it imports this module)
    keys: ApiKeys
    insecure_local: bool


__all__ = ["PROBLEM_JSON", "Problem", "from_error", "json_body", "principal", "problem_response"]

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error with an HTTP status: ``title`` is the status's phrase unless given, ``detail``
    what went wrong with this request; ``extra`` adds members to the body."""

    def __init__(
        self,
        status: int,
        detail: str,
        title: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "about:blank", "title": self.title,
                                "status": self.status, "detail": self.detail}  # fmt: skip
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def from_error(exc: BaseException) -> Problem:
    """The problem for an error the library raised on purpose, for the REST API and the
    console alike; anything else is a 500 that says no more (its traceback goes to the log)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, NotFoundError):
        return Problem(404, str(exc))
    if isinstance(exc, ConfigError):
        return Problem(422, str(exc))
    if isinstance(exc, NoWorkerError):
        return Problem(503, str(exc))
    if isinstance(exc, AgentflowError):
        text = str(exc)
        if text.startswith("cannot connect to Temporal"):
            return Problem(503, text)
        # "no run or session ...", "no dead letter ...": not found; else turned down by the
        # state the thing is in.
        return Problem(404 if text.startswith("no ") else 409, text)
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.UNAVAILABLE:
            return Problem(503, "Temporal cannot be reached")
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Problem(404, f"Temporal holds no such workflow: {exc.message}")
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            return Problem(400, exc.message)
    if isinstance(exc, ConnectionError):
        return Problem(503, "Temporal cannot be reached")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return Problem(503, "no worker answered in time")
    return Problem(500, "the server failed on this request; its log has the details")


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    content = json.dumps(problem.body(instance), ensure_ascii=False).encode()
    return Response(content, problem.status, problem.headers, media_type=PROBLEM_JSON)


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of ``Authorization: Bearer TOKEN`` (None: no such header)."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="agentflow"'})


async def principal(request: HTTPConnection, action: Action) -> Principal:
    """Who sends ``request``, if they may do ``action``: 401 without a known bearer token, 403
    when their role does not allow it. Under ``--insecure-local``: the local admin."""
    context: _Serving = request.app.state.context
    if context.insecure_local:
        return Principal("local", "admin")
    token = bearer_token(request)
    if token is None:
        raise unauthorized("this request needs an API key: Authorization: Bearer TOKEN")
    found = context.keys.lookup(token)
    if found is None:
        raise unauthorized("the API key is not known to this server")
    if not found.may(action):
        raise Problem(
            403, f"{found.name!r} has role {found.role!r}, which may not {action.value}",
        )  # fmt: skip
    return found


async def json_body(request: Request, where: str = "the body") -> dict[str, Any]:
    """The request's JSON object: a 400 problem for anything else (as ``--input`` is read:
    no NaN or Infinity, no nesting Temporal cannot take)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = limits.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Problem(400, f"{where} is not UTF-8 text") from None
    except RecursionError:
        raise Problem(400, f"{where} is nested too deeply") from None
    except ValueError as err:
        raise Problem(400, f"{where} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise Problem(400, f"{where}: expected a JSON object, got {type(data).__name__}")
    if problem := limits.data_problem(data):
        raise Problem(400, f"{where}: {problem}")
    return data
