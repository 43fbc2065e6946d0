"""The console's pages (GET): approvals, sessions, dead letters, a run.

Each reads Temporal through the same library calls as the CLI: ``client.approvals.pending``,
``client.sessions.list_sessions`` and ``session_view``, ``client.dead_letters.list_letters``
and ``read_letter``, ``inspect.trace`` and ``inspect.graph``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import get_args

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from agentflow.client import approvals, dead_letters, sessions, visibility
from agentflow.inspect.graph.flow import trace_graph
from agentflow.inspect.trace.read import format_table, resolve_workflow_id, trace_chain
from agentflow.models.flow import PRIORITY_KEYS
from agentflow.models.stream import Kind
from agentflow.names import session_workflow_id
from agentflow.serve.auth import Action
from agentflow.serve.console_html import (
    Page,
    ago,
    e,
    form,
    hidden,
    layout,
    notice,
    path,
    pre_json,
    table,
    ui_link,
    when,
)
from agentflow.serve.context import ServeContext

__all__ = [
    "approvals_page", "letter_page", "letters_page", "run_page", "session_page", "sessions_page",
]  # fmt: skip

LIMIT = 100
# A session's query is answered in milliseconds by a live worker; longer means none answers.
QUERY_TIMEOUT_SECONDS = 5.0


def _context(request: Request) -> ServeContext:
    context: ServeContext = request.app.state.context
    return context


def _html(title: str, body: str, page: Page, active: str = "") -> Response:
    return HTMLResponse(layout(title, body, page, active))


def _run_links(context: ServeContext, workflow_id: str, run_id: str | None = None) -> str:
    return (f'<a href="{path("runs", workflow_id)}">{e(workflow_id)}</a> '
            f"{ui_link(context.ui_link(workflow_id, run_id))}")  # fmt: skip


async def approvals_page(request: Request, page: Page) -> Response:
    """What waits for a decision, oldest first, each with a form to approve or reject it."""
    context = _context(request)
    rows = [row async for row in approvals.pending(await context.client(), limit=LIMIT)]
    rows.sort(key=lambda row: row.asked_at)
    now = datetime.now(timezone.utc)
    cards = [notice(request.query_params.get("notice"))]
    for row in rows:
        where = [f"run {_run_links(context, row.workflow_id, row.run_id)}"]
        if row.flow:
            where.append(f"flow {e(row.flow)}")
        if row.session_id:
            where.append(f'session <a href="{path("sessions", row.flow, row.session_id)}">'
                         f"{e(row.session_id)}</a>")  # fmt: skip
        timeout = ""
        if row.timeout_at is not None:
            left = max(0, int((row.timeout_at - now).total_seconds()))
            timeout = f" · {e(row.on_timeout)} in {left} s unless decided"
        decide = '<p class="hint">Your role may not decide approvals.</p>'
        if page.may(Action.DECIDE):
            decide = form("/ui/approvals/decide", page, (
                hidden("workflow_id", row.workflow_id) + hidden("agent", row.id)
                + '<label>Comment (a rejection needs one)<textarea name="comment" rows="2" '
                'maxlength="2000"></textarea></label><div class="buttons">'
                '<button name="decision" value="approve" class="approve">Approve</button>'
                '<button name="decision" value="reject" class="reject">Reject</button></div>'
            ), css="decide")  # fmt: skip
        cards.append(f"""<section class="card approval" data-agent="{e(row.agent)}">
<h2>{e(row.agent)} <span class="tag">{e(row.point)}</span></h2>
<p class="meta">{" · ".join(where)}</p>
<p class="meta">waiting {ago(row.asked_at, now)} (since {when(row.asked_at)}){timeout}</p>
{f"<p>{e(row.reason)}</p>" if row.reason else ""}
{pre_json(row.data) if row.data else ""}
{decide}</section>""")
    if not rows:
        cards.append('<p class="empty">No approvals waiting.</p>')
    return _html("Approvals", "\n".join(cards), page, "approvals")


async def sessions_page(request: Request, page: Page) -> Response:
    """Sessions, newest first (``?flow=`` and ``?status=`` filter)."""
    context = _context(request)
    flow, status = request.query_params.get("flow"), request.query_params.get("status")
    query = visibility.session_query(flow or None, status or None)
    rows = []
    async for row in sessions.list_sessions(await context.client(), query, LIMIT):
        name, started = str(row["session"]), datetime.fromisoformat(row["start_time"])
        rows.append([
            f'<a href="{path("sessions", str(row["flow"]), name)}">{e(name)}</a>',
            e(row["flow"]), f'<span class="status {e(row["status"])}">{e(row["status"])}</span>',
            e(when(started)), ui_link(context.ui_link(row["workflow_id"], row["run_id"])),
        ])  # fmt: skip
    body = table(["session", "flow", "status", "started", ""], rows, "No sessions.")
    return _html("Sessions", body, page, "sessions")


async def session_page(request: Request, page: Page) -> Response:
    """One session: its status, counts, queue (next first) and context."""
    context = _context(request)
    flow, name = request.path_params["flow"], request.path_params["session"]
    client = await context.client()
    reading = sessions.session_view(client, flow, name)
    view = await asyncio.wait_for(reading, QUERY_TIMEOUT_SECONDS)
    workflow_id = session_workflow_id(flow, name)
    counts = view.counts
    queued = sorted(view.queued, key=lambda q: (PRIORITY_KEYS[q.priority], q.seq))
    rows = [[e(f"#{q.seq}"), f"<code>{e(q.event_id)}</code>", e(q.priority), e(when(q.deadline))]
            for q in queued]  # fmt: skip
    close = ""
    if view.status in ("idle", "processing") and page.may(Action.ADMIN):
        close = form("/ui/sessions/close", page, hidden("flow", flow) + hidden("session", name)
                     + '<button class="reject">Close session</button>')  # fmt: skip
    body = f"""{notice(request.query_params.get("notice"))}
<p class="meta">flow {e(view.flow)} · <span class="status {e(view.status)}">{e(view.status)}</span>
{e(f"({view.closed_reason})" if view.closed_reason else "")} · run {view.runs}
· last event {e(when(view.last_event_at) or "never")}</p>
<p class="links"><a href="{path("runs", workflow_id)}">Trace, graph and live stream</a> ·
<a href="/ui/dead-letters?session={e(name)}&amp;all=1">Its dead letters</a> ·
{ui_link(context.ui_link(workflow_id))}</p>
<p>{counts.emitted} emitted · {counts.completed} completed · {counts.handled} handled ·
{counts.dead_lettered} dead-lettered · {counts.duplicates} duplicates ·
current event: <code>{e(view.current or "-")}</code></p>
{close}
<h2>Queue</h2>{table(["#", "event", "priority", "deadline"], rows, "Nothing queued.")}
<h2>Context</h2>{pre_json(view.context)}"""
    return _html(f"Session {name}", body, page, "sessions")


async def letters_page(request: Request, page: Page) -> Response:
    """Open dead letters, newest first (``?all=1``: decided ones too)."""
    context = _context(request)
    params = request.query_params
    everything = params.get("all") == "1"
    found = dead_letters.list_letters(await context.client(), params.get("session") or None,
                                      params.get("flow") or None, include_decided=everything,
                                      limit=LIMIT)  # fmt: skip
    rows = []
    async for row in found:
        error = (row.error or "").splitlines()[0][:120] if row.error else ""
        session = e(row.session_id)
        if row.flow and row.session_id:
            session = f'<a href="{path("sessions", row.flow, row.session_id)}">{session}</a>'
        rows.append([
            e(when(row.dead_lettered_at)),
            f'<span class="status {e(row.status)}">{e(row.status)}</span>',
            f'<a href="{path("dead-letters", row.id)}">{e(row.id)}</a>',
            session, e(row.reason), e(row.failed_agent), e(error),
            ui_link(context.ui_link(row.id, row.run_id))
            + _letter_buttons(page, row.id, row.status),
        ])  # fmt: skip
    toggle = ('<a href="/ui/dead-letters">Open letters only</a>' if everything
              else '<a href="/ui/dead-letters?all=1">Show redriven and purged too</a>')  # fmt: skip
    headers = ["dead-lettered", "status", "letter", "session", "reason", "agent", "error", ""]
    body = (notice(params.get("notice")) + f'<p class="links">{toggle}</p>'
            + table(headers, rows, "No dead letters."))  # fmt: skip
    return _html("Dead letters", body, page, "dead-letters")


def _letter_buttons(page: Page, letter_id: str, status: str) -> str:
    if status != "open" or not page.may(Action.ADMIN):
        return ""
    redrive = form(
        "/ui/dead-letters/redrive",
        page,
        hidden("letter", letter_id) + '<button class="approve">Redrive</button>',
    )
    purge = form(
        "/ui/dead-letters/purge",
        page,
        hidden("letter", letter_id) + '<button class="reject">Purge</button>',
    )
    return redrive + purge


async def letter_page(request: Request, page: Page) -> Response:
    """One dead letter: its event, the error, the state it failed in, and what became of it."""
    context = _context(request)
    letter_id = request.path_params["letter"]
    record = await dead_letters.read_letter(await context.client(), letter_id)
    view, letter = record.view, record.view.letter
    session = path("sessions", letter.flow, letter.session_id)
    facts = [
        f"flow {e(letter.flow)}",
        f'session <a href="{session}">{e(letter.session_id)}</a>',
        f"reason {e(letter.reason)}",
        f"dead-lettered {e(when(letter.dead_lettered_at))}",
    ]
    if letter.failed_agent:
        facts.append(f"agent {e(letter.failed_agent)} (attempt {letter.attempts}, "
                     f"{e(letter.error_type or 'error')})")  # fmt: skip
    decided = ""
    if view.status != "open":
        as_ = f" as event {view.redriven_as}" if view.redriven_as else ""
        decided = (f'<p class="notice">{e(view.status)}{e(as_)} by {e(view.decided_by)} at '
                   f"{e(when(view.decided_at))}</p>")  # fmt: skip
    event = pre_json(letter.event.model_dump(mode="json")) if letter.event else (
        f"<pre>{e(letter.raw)}</pre>")  # fmt: skip
    state = pre_json(letter.state.model_dump(mode="json")) if letter.state else "<p>-</p>"
    body = f"""{notice(request.query_params.get("notice"))}{decided}
<p class="meta"><span class="status {e(record.status)}">{e(record.status)}</span> ·
{" · ".join(facts)}</p>
<p class="links">{ui_link(context.ui_link(letter_id, record.run_id))}</p>
{_letter_buttons(page, letter_id, record.status)}
<h2>Error</h2><pre>{e(letter.error)}</pre>
<h2>Event</h2>{event}
<h2>Last state</h2>{state}"""
    return _html(f"Dead letter {letter_id}", body, page, "dead-letters")


async def run_page(request: Request, page: Page) -> Response:
    """A run (or a session's workflow): status, its trace, its graph, its live stream."""
    context = _context(request)
    client = await context.client()
    workflow_id, run_id = await resolve_workflow_id(client, request.path_params["workflow_id"])
    description = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    entries = await trace_chain(client, workflow_id, run_id)
    status = visibility.status_name(description.status)
    ended = f" · ended {e(when(description.close_time))}" if description.close_time else ""
    body = f"""<p class="meta"><span class="status {e(status)}" id="run-status">{e(status)}</span>
· {e(description.workflow_type)} · started {e(when(description.start_time))}{ended}
· task queue <code>{e(description.task_queue)}</code></p>
<p class="links">{ui_link(context.ui_link(workflow_id, description.run_id))}</p>
<h2>Graph</h2><div class="graph"><pre class="mermaid">{e(trace_graph(entries))}</pre></div>
<h2>Live stream</h2>
<pre id="stream" class="stream" data-src="{path("stream", workflow_id)}"
data-kinds="{e(" ".join(get_args(Kind)))}"></pre>
<h2>Trace</h2><pre class="trace">{e(format_table(entries))}</pre>"""
    html = layout(f"Run {workflow_id}", body, page)
    mermaid = '<script src="/ui/static/mermaid.min.js" defer></script>\n<script src="/ui/static'
    return HTMLResponse(html.replace('<script src="/ui/static', mermaid, 1))
