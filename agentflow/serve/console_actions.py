"""What the console's forms do (POST), and a run's live stream as Server-Sent Events.

The role check and the CSRF check happened before these run (``console.guarded``); the person
signed in is who decides (``page.who.name``). Each answers with a redirect to the page it came
from, saying what was done, so a reload sends nothing twice.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from agentflow.client import approvals, dead_letters, sessions
from agentflow.models.stream import stream as read_stream
from agentflow.serve.console_html import Page, path
from agentflow.serve.context import ServeContext
from agentflow.serve.problems import Problem
from agentflow.serve.stream import sse_events

__all__ = ["close", "decide", "purge", "redrive", "stream"]


def _context(request: Request) -> ServeContext:
    context: ServeContext = request.app.state.context
    return context


async def _field(request: Request, name: str, required: bool = True) -> str:
    value = (await request.form()).get(name)
    text = value if isinstance(value, str) else ""
    if required and not text.strip():
        raise Problem(400, f"the form lacks {name!r}")
    return text


def _back(url: str, said: str) -> Response:
    joiner = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{joiner}notice={quote(said)}", status_code=303)


async def decide(request: Request, page: Page) -> Response:
    """Approve or reject what ``agent`` (an approval id) waits for in ``workflow_id``."""
    workflow_id, agent = await _field(request, "workflow_id"), await _field(request, "agent")
    verdict = await _field(request, "decision")
    if verdict not in ("approve", "reject"):
        raise Problem(400, f"decision: 'approve' or 'reject', not {verdict!r}")
    comment = await _field(request, "comment", required=False)
    request_ = approvals.decision(verdict == "approve", agent, page.who.name, comment)
    client = await _context(request).client()
    approval = await approvals.decide(client, workflow_id, request_)
    said = f"{approval.status} {approval.agent} in {workflow_id} (by {approval.decided_by})"
    return _back("/ui/approvals", said)


async def close(request: Request, page: Page) -> Response:
    """Ask a running session to finish its queued events and end."""
    flow, name = await _field(request, "flow"), await _field(request, "session")
    client = await _context(request).client()
    view = await sessions.close_if_running(client, flow, name, page.who.name)
    back = path("sessions", flow, name)
    if view is None:
        return _back(back, f"session {name} is already closed")
    return _back(back, f"session {name} closes once its pending events are done")


async def redrive(request: Request, page: Page) -> Response:
    """Emit an open letter's event again into its session, with this server's config of its
    flow (which must be one of the server's ``--config`` files)."""
    letter_id = await _field(request, "letter")
    client = await _context(request).client()
    record = await dead_letters.read_letter(client, letter_id)
    config = _context(request).config(record.view.letter.flow)
    decision = await dead_letters.redrive(client, config, letter_id, page.who.name)
    if decision.outcome == "redriven":
        said = f"redriven {letter_id} as event {decision.event_id}"
    else:
        said = f"{letter_id} was already redriven as event {decision.view.redriven_as}"
    return _back(path("dead-letters", letter_id), said)


async def purge(request: Request, page: Page) -> Response:
    """Close an open letter without processing its event."""
    letter_id = await _field(request, "letter")
    decision = await dead_letters.purge(await _context(request).client(), letter_id,
                                        page.who.name)  # fmt: skip
    return _back(path("dead-letters", letter_id), f"{decision.outcome} {letter_id}")


async def stream(request: Request, page: Page) -> Response:
    """The run's live stream (``models.stream.stream``, as ``agentflow watch``) as the REST
    API sends it (``stream.sse_events``: one event per item, named by its kind, its offset as
    the id, so a reconnecting browser resumes after it; ``end`` once the run ended and all was
    read), behind the console's sign-in instead of a bearer token."""
    workflow_id = request.path_params["workflow_id"]
    client = await _context(request).client()
    await client.get_workflow_handle(workflow_id).describe()  # 404 before the stream starts
    last = request.headers.get("last-event-id", "")
    items = read_stream(client, workflow_id, from_offset=int(last) + 1 if last.isdigit() else 0)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(sse_events(items), media_type="text/event-stream", headers=headers)
