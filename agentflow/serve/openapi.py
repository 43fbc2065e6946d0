"""The API's OpenAPI 3.1 description (``/openapi.json``) and a page that reads it (``/docs``).

The page is rendered here from the same table, with no script and nothing fetched from
elsewhere, so it works on a machine without internet access.
"""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from agentflow.serve.auth import ROLES, Action

__all__ = ["ENDPOINTS", "routes", "spec"]

_OBJ: dict[str, Any] = {"type": "object"}
_EVENT = {"type": "object", "required": ["specversion", "id", "source", "type"],
          "properties": {"specversion": {"const": "1.0"}, "id": {"type": "string"},
                         "source": {"type": "string"}, "type": {"type": "string"},
                         "subject": {"type": "string"}, "target": {"type": "string"},
                         "flow": {"type": "string"}, "priority": {"type": "string"},
                         "partitionkey": {"type": "string"}, "data": _OBJ}}  # fmt: skip
_RUN = {"type": "object", "properties": {
    "input": _OBJ, "target": {"type": "string"}, "session": {"type": "string"},
    "workflow_id": {"type": "string"}}}  # fmt: skip
_APPROVE = {"type": "object", "properties": {"agent": {"type": "string"},
                                             "comment": {"type": "string"}}}  # fmt: skip
_REJECT = {"type": "object", "required": ["reason"],
           "properties": {"agent": {"type": "string"}, "reason": {"type": "string"}}}  # fmt: skip

# method, path, action, summary, query parameters, request body (media type: schema), success
ENDPOINTS: list[tuple[str, str, Action, str, tuple[str, ...], dict[str, Any], int]] = [
    ("post", "/events", Action.EMIT, "CloudEvents in: `type` is the topic to publish, or with "
     "a `target` extension the agent to emit to; `subject` the session, `id` the event id",
     (), {"application/cloudevents+json": _EVENT, "application/cloudevents-batch+json":
          {"type": "array", "items": _EVENT}}, 202),
    ("post", "/flows/{flow}/runs", Action.EMIT, "start a run of a flow", (),
     {"application/json": _RUN}, 201),
    ("get", "/flows", Action.READ, "the flows this server serves", (), {}, 200),
    ("get", "/flows/{flow}/graph", Action.READ, "the flow as a Mermaid chart", (), {}, 200),
    ("get", "/runs", Action.READ, "runs, newest first",
     ("flow", "session", "status", "limit"), {}, 200),
    ("get", "/runs/{run}", Action.READ, "a run's status and progress", (), {}, 200),
    ("get", "/runs/{run}/trace", Action.READ, "a run's trace, one entry per step",
     ("agent", "event", "flow_only", "run_id"), {}, 200),
    ("get", "/runs/{run}/graph", Action.READ, "the path a run took, as Mermaid", ("last",), {},
     200),
    ("get", "/runs/{run}/stream", Action.READ, "a run's live stream (Server-Sent Events)",
     ("from_offset", "tokens"), {}, 200),
    ("post", "/runs/{run}/approve", Action.DECIDE, "approve what waits in a run or session",
     (), {"application/json": _APPROVE}, 200),
    ("post", "/runs/{run}/reject", Action.DECIDE, "reject what waits in a run or session", (),
     {"application/json": _REJECT}, 200),
    ("get", "/approvals", Action.READ, "approvals that wait", ("flow", "session", "limit"), {},
     200),
    ("get", "/sessions", Action.READ, "sessions, newest first", ("flow", "status", "limit"),
     {}, 200),
    ("get", "/flows/{flow}/sessions/{session}", Action.READ,
     "a session's status, queue, counts and context", (), {}, 200),
    ("post", "/flows/{flow}/sessions/{session}/close", Action.ADMIN,
     "finish a session's queued events, then end it", (), {}, 200),
    ("get", "/flows/{flow}/sessions/{session}/stream", Action.READ,
     "a session's live stream (Server-Sent Events)", ("from_offset", "tokens"), {}, 200),
    ("get", "/sessions/{session}/trace", Action.READ, "a session's trace", (), {}, 200),
    ("get", "/dead-letters", Action.READ, "open dead letters (all=true: decided ones too)",
     ("flow", "session", "all", "limit"), {}, 200),
    ("get", "/dead-letters/{letter}", Action.READ, "one dead letter", (), {}, 200),
    ("post", "/dead-letters/{letter}/redrive", Action.ADMIN,
     "emit a letter's event again into its session", (), {}, 200),
    ("post", "/dead-letters/{letter}/purge", Action.ADMIN,
     "close a letter without processing its event", (), {}, 200),
    ("get", "/topics", Action.READ, "bus subscribers and their topics", (), {}, 200),
]  # fmt: skip

_ERRORS = {"400": "malformed request or CloudEvent", "401": "no API key, or an unknown one",
           "403": "the key's role may not do this", "404": "no such flow, run, session or "
           "dead letter", "409": "the state forbids it (nothing waits; decided already)",
           "413": "body over the limit", "422": "unknown topic or target; input refused",
           "503": "Temporal, or a worker that must answer, is not there"}  # fmt: skip


def _roles(action: Action) -> str:
    return ", ".join(role for role, allowed in ROLES.items() if action in allowed)


def spec() -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    paths: dict[str, dict[str, Any]] = {}
    for method, path, action, summary, query, body, ok in ENDPOINTS:
        names = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        operation: dict[str, Any] = {
            "summary": summary, "description": f"Roles: {_roles(action)}.",
            "parameters": [{"name": n, "in": "path", "required": True,
                            "schema": {"type": "string"}} for n in names]
            + [{"name": n, "in": "query", "schema": {"type": "string"}} for n in query],
            "responses": {str(ok): {"description": "done"},
                          **{code: {"description": text, "content": problem}
                             for code, text in _ERRORS.items()}},
        }  # fmt: skip
        if body:
            operation["requestBody"] = {"content": {t: {"schema": s} for t, s in body.items()}}
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "agentflow serve", "version": "1",
                 "description": "CloudEvents in and a REST API over agentflow's flows, "
                 "sessions, dead letters and approvals (docs/serve.md)."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {"type": "object", "properties": {
                "type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "instance": {"type": "string"}}}},
        },
        "security": [{"bearer": []}],
    }  # fmt: skip


def routes() -> list[BaseRoute]:
    return [Route("/openapi.json", openapi_json), Route("/docs", docs_page)]


async def openapi_json(request: Request) -> Response:
    return JSONResponse(spec())


async def docs_page(request: Request) -> Response:
    rows = []
    for method, path, action, summary, query, body, ok in ENDPOINTS:
        params = f"<br><small>query: {html.escape(', '.join(query))}</small>" if query else ""
        types = f"<br><small>body: {html.escape(', '.join(body))}</small>" if body else ""
        rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}"
                    f"</code></td><td>{html.escape(summary)}{params}{types}</td>"
                    f"<td>{_roles(action)}</td><td>{ok}</td></tr>")  # fmt: skip
    errors = "".join(f"<li><b>{c}</b> {html.escape(t)}</li>" for c, t in _ERRORS.items())
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>agentflow serve API</title><style>body{{font:15px system-ui,sans-serif;margin:2em;
max-width:70em}}td,th{{border-bottom:1px solid #ddd;padding:.4em;text-align:left;
vertical-align:top}}table{{border-collapse:collapse}}</style></head><body>
<h1>agentflow serve API</h1><p>Send <code>Authorization: Bearer TOKEN</code>. The
machine-readable description is <a href="/openapi.json">/openapi.json</a>. Errors are RFC 9457
<code>application/problem+json</code> bodies:</p><ul>{errors}</ul>
<table><tr><th>method</th><th>path</th><th>what</th><th>roles</th><th>success</th></tr>
{"".join(rows)}</table></body></html>"""
    return HTMLResponse(page)
