"""A run's (or a session's) live stream as Server-Sent Events: ``agentflow watch`` over HTTP.

Fed by the workflow stream every run and session hosts (agentflow/models/stream.py): each
item is one SSE event, ``id`` its offset, ``event`` its kind, ``data`` the item as JSON (what
``agentflow watch --json`` prints). A client that reconnects with ``Last-Event-ID`` goes on
after that item (or give ``?from_offset=N``); ``?tokens=false`` leaves out LLM token batches.
When the run has ended and every item was sent, an ``end`` event closes the stream. A comment
line goes out every ``KEEPALIVE_SECONDS`` so proxies keep a quiet stream open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from temporalio.client import Client

from agentflow.models.stream import Streamed, stream
from agentflow.names import session_workflow_id
from agentflow.serve.api import query_flag
from agentflow.serve.auth import Action
from agentflow.serve.context import ServeContext
from agentflow.serve.problems import Problem, principal
from agentflow.serve.runs import find_run

__all__ = ["routes", "sse_events"]

KEEPALIVE_SECONDS = 15.0


def routes() -> list[BaseRoute]:
    return [
        Route("/runs/{run}/stream", run_stream),
        Route("/flows/{flow}/sessions/{session}/stream", session_stream),
    ]


async def run_stream(request: Request) -> Response:
    await principal(request, Action.READ)
    context: ServeContext = request.app.state.context
    client = await context.client()
    workflow_id, _ = await find_run(client, request.path_params["run"])
    return _response(request, client, workflow_id)


async def session_stream(request: Request) -> Response:
    await principal(request, Action.READ)
    context: ServeContext = request.app.state.context
    flow, session = request.path_params["flow"], request.path_params["session"]
    context.config(flow)
    client = await context.client()
    workflow_id = session_workflow_id(flow, session)
    await client.get_workflow_handle(workflow_id).describe()  # NOT_FOUND: a 404
    return _response(request, client, workflow_id)


def _response(request: Request, client: Client, workflow_id: str) -> Response:
    offset = _from_offset(request)
    items = stream(client, workflow_id, from_offset=offset,
                   tokens=query_flag(request, "tokens") if "tokens" in request.query_params
                   else True)  # fmt: skip
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(sse_events(items), media_type="text/event-stream", headers=headers)


def _from_offset(request: Request) -> int:
    last = request.headers.get("last-event-id")
    if last is not None and last.isdigit():
        return int(last) + 1
    text = request.query_params.get("from_offset", "0")
    if not text.isdigit():
        raise Problem(400, f"from_offset: a whole number of 0 or more, not {text!r}")
    return int(text)


def sse(event: str, data: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


async def sse_events(items: AsyncIterator[Streamed]) -> AsyncIterator[str]:
    """Each item as an SSE event, keep-alive comments while none comes, then ``end``."""
    queue: asyncio.Queue[Streamed | BaseException | None] = asyncio.Queue(maxsize=256)

    async def read() -> None:
        try:
            async for item in items:
                await queue.put(item)
            await queue.put(None)
        except Exception as err:  # the stream failed: say so, then end
            await queue.put(err)

    reader = asyncio.ensure_future(read())
    try:
        while True:
            try:
                got = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except asyncio.TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if got is None:
                yield sse("end", "{}")
                return
            if isinstance(got, BaseException):
                yield sse("error", json.dumps({"detail": f"the stream failed: "
                                               f"{type(got).__name__}"}))  # fmt: skip
                return
            body = {"offset": got.offset, **got.item.model_dump(mode="json")}
            yield sse(got.item.kind, json.dumps(body, ensure_ascii=False), got.offset)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
