"""The REST API over sessions, dead letters and approvals: the same client-layer calls as
``agentflow session``, ``agentflow dead-letters`` and ``agentflow approve|reject|pending``.

Who decides (closes, redrives, purges, approves, rejects) is the principal of the API key,
recorded with the decision as ``--by`` is on the command line.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic_core import to_jsonable_python
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from agentflow.client import approvals, dead_letters, sessions, visibility
from agentflow.errors import ConfigError, NoWorkerError
from agentflow.names import session_workflow_id
from agentflow.serve.auth import Action
from agentflow.serve.context import ServeContext
from agentflow.serve.problems import Problem, json_body, principal

__all__ = ["json_response", "query_flag", "query_limit", "routes"]

# A running session's query is answered in milliseconds by a live worker.
QUERY_TIMEOUT_SECONDS = 5.0


def routes() -> list[BaseRoute]:
    return [
        Route("/sessions", list_sessions),
        Route("/flows/{flow}/sessions/{session}", show_session),
        Route("/flows/{flow}/sessions/{session}/close", close_session, methods=["POST"]),
        Route("/dead-letters", list_letters),
        Route("/dead-letters/{letter}", show_letter),
        Route("/dead-letters/{letter}/redrive", redrive_letter, methods=["POST"]),
        Route("/dead-letters/{letter}/purge", purge_letter, methods=["POST"]),
        Route("/approvals", pending_approvals),
        Route("/runs/{run}/approve", decide, methods=["POST"]),
        Route("/runs/{run}/reject", decide, methods=["POST"]),
    ]


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` (models, datetimes and all) as JSON."""
    return JSONResponse(to_jsonable_python(body), status)


def query_limit(request: Request, default: int, most: int = 1000) -> int:
    text = request.query_params.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise Problem(400, f"limit: a whole number from 1 to {most}, not {text!r}")
    return int(text)


def query_flag(request: Request, name: str) -> bool:
    text = request.query_params.get(name, "false").lower()
    if text not in ("true", "false", "1", "0", ""):
        raise Problem(400, f"{name}: true or false, not {text!r}")
    return text in ("true", "1", "")


def _context(request: Request) -> ServeContext:
    context: ServeContext = request.app.state.context
    return context


# --- sessions --------------------------------------------------------------------------------


async def list_sessions(request: Request) -> Response:
    await principal(request, Action.READ)
    params = request.query_params
    try:
        query = visibility.session_query(params.get("flow"), params.get("status"))
    except ConfigError as err:
        raise Problem(400, str(err)) from None
    client = await _context(request).client()
    rows = [row async for row in sessions.list_sessions(client, query, query_limit(request, 50))]
    return json_response({"sessions": rows})


async def show_session(request: Request) -> Response:
    await principal(request, Action.READ)
    context = _context(request)
    flow, session = request.path_params["flow"], request.path_params["session"]
    context.config(flow)
    client = await context.client()
    try:
        view = await asyncio.wait_for(sessions.session_view(client, flow, session),
                                      QUERY_TIMEOUT_SECONDS)  # fmt: skip
    except asyncio.TimeoutError:
        raise NoWorkerError(f"no worker answered within {QUERY_TIMEOUT_SECONDS:g}s what "
                            f"session {session!r} holds") from None  # fmt: skip
    workflow_id = session_workflow_id(flow, session)
    return json_response({"workflow_id": workflow_id, **view.model_dump(mode="json"),
                          "link": context.ui_link(workflow_id)})  # fmt: skip


async def close_session(request: Request) -> Response:
    who = await principal(request, Action.ADMIN)
    context = _context(request)
    flow, session = request.path_params["flow"], request.path_params["session"]
    context.config(flow)
    view = await sessions.close_if_running(await context.client(), flow, session, who.name)
    if view is None:
        raise Problem(409, f"session {session!r} of flow {flow!r} is closed already")
    return json_response({"closing": True, "by": who.name, **view.model_dump(mode="json")})


# --- dead letters ----------------------------------------------------------------------------


async def list_letters(request: Request) -> Response:
    await principal(request, Action.READ)
    params = request.query_params
    client = await _context(request).client()
    rows = dead_letters.list_letters(
        client, params.get("session"), params.get("flow"),
        include_decided=query_flag(request, "all"), limit=query_limit(request, 100),
    )  # fmt: skip
    return json_response({"dead_letters": [row.model_dump(mode="json") async for row in rows]})


async def show_letter(request: Request) -> Response:
    await principal(request, Action.READ)
    context = _context(request)
    letter_id = request.path_params["letter"]
    record = await dead_letters.read_letter(await context.client(), letter_id)
    return json_response({**record.view.model_dump(mode="json"), "status": record.status,
                          "task_queue": record.task_queue, "run_id": record.run_id,
                          "link": context.ui_link(letter_id, record.run_id)})  # fmt: skip


async def redrive_letter(request: Request) -> Response:
    who = await principal(request, Action.ADMIN)
    context = _context(request)
    client, letter_id = await context.client(), request.path_params["letter"]
    record = await dead_letters.read_letter(client, letter_id)
    flow = record.view.letter.flow
    if flow not in context.configs:
        raise Problem(422, f"dead letter {letter_id} is of flow {flow!r}, which this server "
                      "does not serve (agentflow serve --config FILE of that flow)")  # fmt: skip
    decision = await dead_letters.redrive(client, context.config(flow), letter_id, who.name)
    return _decided(decision, "already redriven")


async def purge_letter(request: Request) -> Response:
    who = await principal(request, Action.ADMIN)
    client = await _context(request).client()
    decision = await dead_letters.purge(client, request.path_params["letter"], who.name)
    return _decided(decision, "already purged")


def _decided(decision: dead_letters.Decision, already: str) -> Response:
    view = decision.view
    body = {"id": decision.letter_id, "outcome": decision.outcome, "event_id": decision.event_id,
            "decided_by": view.decided_by, "decided_at": view.decided_at,
            "redriven_as": view.redriven_as}  # fmt: skip
    if decision.outcome == already:
        by = f" by {view.decided_by}" if view.decided_by else ""
        raise Problem(409, f"dead letter {decision.letter_id} was {already.split()[1]}{by}"
                      + (f" as {view.redriven_as}" if view.redriven_as else ""),
                      **to_jsonable_python(body))  # fmt: skip
    return json_response(body)


# --- approvals -------------------------------------------------------------------------------


async def pending_approvals(request: Request) -> Response:
    await principal(request, Action.READ)
    params = request.query_params
    context = _context(request)
    found = approvals.pending(await context.client(), params.get("session"), params.get("flow"),
                              query_limit(request, 100))  # fmt: skip
    rows = [{**row.model_dump(mode="json"), "link": context.ui_link(row.workflow_id, row.run_id)}
            async for row in found]  # fmt: skip
    return json_response({"approvals": rows})


async def decide(request: Request) -> Response:
    """``POST /runs/{run}/approve`` ``{"agent", "comment"}``; ``.../reject`` ``{"agent",
    "reason"}`` (a reason is required)."""
    who = await principal(request, Action.DECIDE)
    approve = request.url.path.endswith("/approve")
    body = await json_body(request)
    words = ("agent", "comment") if approve else ("agent", "reason")
    unknown = sorted(set(body) - set(words))
    if unknown:
        raise Problem(400, f"{unknown[0]}: unknown key; allowed: {', '.join(words)}")
    if any(body.get(word) is not None and not isinstance(body[word], str) for word in words):
        raise Problem(400, f"{' and '.join(words)} are strings")
    text = body.get(words[1])
    if not approve and not (text or "").strip():
        raise Problem(422, "reason: say why the agent is rejected (it goes into the run)")
    request_ = approvals.decision(approve, body.get("agent"), who.name, text)
    workflow_id = request.path_params["run"]
    approval = await approvals.decide(await _context(request).client(), workflow_id, request_)
    return json_response({"workflow_id": workflow_id, **approval.model_dump(mode="json")})
