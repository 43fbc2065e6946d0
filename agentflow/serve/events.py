"""CloudEvents in (``POST /events``) and runs started over HTTP (``POST /flows/{flow}/runs``).

A CloudEvent (structured ``application/cloudevents+json``, binary ``ce-*`` headers, or a
batch ``application/cloudevents-batch+json``) becomes one call of the client layer:

- with a ``target`` extension: ``sessions.emit`` of an event to that agent (the flow that has
  it; a ``flow`` extension picks one when several do), in session ``subject`` (default: a
  session of its own), with ``priority`` from the extension of that name;
- without: ``bus.publish`` to topic ``type``, its deliveries into session ``subject`` of each
  subscriber, ordered by the ``partitionkey`` extension.

The CloudEvent's ``id`` is the event id, so a client that retries is processed once (the
session, or the bus shard, drops an id it has seen). A batch is checked whole before any of it
is sent; the answer, 202, comes once Temporal has recorded every event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from temporalio.exceptions import WorkflowAlreadyStartedError

from agentflow.client import bus, sessions
from agentflow.client.inputs import check_run
from agentflow.config import FlowConfig
from agentflow.config.topics import topic_problem
from agentflow.errors import ConfigError
from agentflow.models.bus import subscribers
from agentflow.names import session_workflow_id
from agentflow.serve.auth import Action, Principal
from agentflow.serve.context import ServeContext
from agentflow.serve.problems import Problem, json_body, principal

__all__ = ["BATCH", "STRUCTURED", "accept_events", "parse_events", "routes"]

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_BATCH = 1000
# Events of one request sent to Temporal at once.
PARALLEL_SENDS = 64
_FORMAT = JSONFormat()


def routes() -> list[BaseRoute]:
    return [
        Route("/events", post_events, methods=["POST"]),
        Route("/flows/{flow}/runs", start_run, methods=["POST"]),
    ]


async def post_events(request: Request) -> Response:
    who = await principal(request, Action.EMIT)
    events, batch = parse_events(dict(request.headers), await request.body())
    accepted = await accept_events(request.app.state.context, who, events)
    if batch:
        return JSONResponse({"accepted": accepted}, 202)
    return JSONResponse(accepted[0], 202)


def parse_events(headers: dict[str, str], body: bytes) -> tuple[list[BaseCloudEvent], bool]:
    """The CloudEvents of a request and whether it was a batch; a 400 problem if it holds
    none, or anything that is not one."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == BATCH:
            items = json.loads(body)
            if not isinstance(items, list) or not items:
                raise Problem(400, "a CloudEvents batch is a non-empty JSON array of events")
            if len(items) > MAX_BATCH:
                raise Problem(400, f"a batch holds at most {MAX_BATCH} events, not {len(items)}")
            return [_structured(item, f"event {n}") for n, item in enumerate(items)], True
        if any(name.lower().startswith("ce-") for name in headers):
            return [from_binary(HTTPMessage(headers, body), _FORMAT)], False
        if content_type == STRUCTURED:
            if not body.lstrip().startswith(b"{"):
                raise Problem(400, "not a valid CloudEvent: the event is not a JSON object")
            return [from_structured(HTTPMessage({}, body), _FORMAT)], False
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError included
        raise Problem(400, f"not a CloudEvent: the body is not JSON ({err})") from None
    except BaseCloudEventException as err:
        raise Problem(400, f"not a valid CloudEvent: {_first_line(err)}") from None
    raise Problem(
        400, f"not a CloudEvent: send Content-Type {STRUCTURED} (structured), {BATCH} "
        "(a batch), or the ce-specversion, ce-id, ce-source and ce-type headers (binary)",
    )  # fmt: skip


def _structured(item: Any, where: str) -> BaseCloudEvent:
    if not isinstance(item, dict):
        raise Problem(400, f"not a valid CloudEvent: {where} is not a JSON object")
    try:
        return from_structured(HTTPMessage({}, json.dumps(item).encode()), _FORMAT)
    except BaseCloudEventException as err:
        raise Problem(400, f"not a valid CloudEvent: {where}: {_first_line(err)}") from None
    except (ValueError, TypeError) as err:
        raise Problem(400, f"not a valid CloudEvent: {where}: {err}") from None


def _first_line(err: Exception) -> str:
    return str(err).replace("Failed to create CloudEvent due to the validation errors:: ", "")


@dataclass
class _Send:
    answer: dict[str, Any]
    call: Callable[[], Awaitable[Any]]


async def accept_events(
    context: ServeContext, who: Principal, events: list[BaseCloudEvent]
) -> list[dict[str, Any]]:
    """Check every event (400/422 problems name the event), then record them all in Temporal;
    one answer per event: its id, what it became, and the workflow that holds it."""
    sends = [await _checked(context, who, event, n, len(events)) for n, event in
             enumerate(events)]  # fmt: skip
    gate = asyncio.Semaphore(PARALLEL_SENDS)

    async def send(item: _Send) -> None:
        async with gate:
            await item.call()

    await asyncio.gather(*(send(item) for item in sends))
    return [item.answer for item in sends]


async def _checked(
    context: ServeContext, who: Principal, event: BaseCloudEvent, index: int, total: int
) -> _Send:
    where = f"event {index}: " if total > 1 else ""
    attributes = event.get_attributes()
    data = event.get_data()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Problem(400, f"{where}data must be a JSON object (datacontenttype "
                      "application/json)")  # fmt: skip
    strings = {name: value for name, value in attributes.items() if isinstance(value, str)}
    try:
        if "target" in strings:
            return await _emit(context, event, data, strings)
        return await _publish(context, who, event, data, strings)
    except ConfigError as err:
        raise Problem(422, f"{where}{err}") from None
    except Problem as problem:
        problem.detail = where + problem.detail
        raise


async def _emit(
    context: ServeContext, event: BaseCloudEvent, data: dict[str, Any], attrs: dict[str, str]
) -> _Send:
    target = attrs["target"]
    config = _flow_with(context, target, attrs.get("flow"))
    metadata = {"ce_type": event.get_type(), "ce_source": event.get_source()}
    flow_event = sessions.new_event(
        config, data, session_id=attrs.get("subject"), target=target,
        priority=attrs.get("priority"), event_id=event.get_id(), metadata=metadata,
    )  # fmt: skip
    runner = await context.runner(config.name)
    workflow_id = session_workflow_id(config.name, flow_event.session_id)
    answer = {"id": flow_event.id, "emitted": target, "flow": config.name,
              "session": flow_event.session_id, "workflow_id": workflow_id}  # fmt: skip
    return _Send(answer, lambda: runner.emit_event(flow_event))


def _flow_with(context: ServeContext, target: str, flow: str | None) -> FlowConfig:
    if flow is not None:
        config = context.configs.get(flow)
        if config is None:
            raise Problem(422, f"unknown flow {flow!r}; flows: {', '.join(context.configs)}")
        candidates = [config]
    else:
        candidates = list(context.configs.values())
    having = [c for c in candidates if target in c.enabled_agents()]
    if not having:
        raise Problem(422, f"unknown target {target!r}: no enabled agent of that name in "
                      f"flows {', '.join(c.name for c in candidates) or '(none)'}")  # fmt: skip
    if len(having) > 1:
        raise Problem(422, f"target {target!r} is an agent of flows "
                      f"{', '.join(c.name for c in having)}; add the 'flow' extension")  # fmt: skip
    return having[0]


async def _publish(
    context: ServeContext, who: Principal, event: BaseCloudEvent, data: dict[str, Any],
    attrs: dict[str, str],
) -> _Send:  # fmt: skip
    topic = event.get_type()
    if problem := topic_problem(topic):
        raise Problem(422, f"type {topic!r} is not a topic: {problem}")
    flows = [context.config(attrs["flow"])] if "flow" in attrs else list(context.configs.values())
    config = next((c for c in flows if c.may_publish(None, topic)), None)
    if config is None:
        raise Problem(422, f"unknown topic {topic!r}: not in [bus] publishes of flows "
                      f"{', '.join(c.name for c in flows) or '(none)'}")  # fmt: skip
    if not subscribers(await context.registrations(), topic) and not subscribers(
        await context.registrations(fresh=True), topic
    ):
        raise Problem(422, f"unknown topic {topic!r}: no flow subscribes to it "
                      "(agentflow topics lists the subscriptions)")  # fmt: skip
    request = bus.client_request(
        config, topic, data, identity=f"http {who.name}", key=attrs.get("partitionkey"),
        event_id=event.get_id(), session_id=attrs.get("subject"),
    )  # fmt: skip
    client = await context.client()
    answer = {"id": request.event_id, "published": topic, "flow": config.name,
              "session": request.session_id}  # fmt: skip

    async def send() -> None:
        handle = await bus.publish(client, request)
        answer["workflow_id"] = handle.workflow_id

    return _Send(answer, send)


async def start_run(request: Request) -> Response:
    """``POST /flows/{flow}/runs`` with ``{"input": {...}, "target", "session",
    "workflow_id"}`` (all optional): 201 with the run's ids and its link in the Temporal UI."""
    await principal(request, Action.EMIT)
    context: ServeContext = request.app.state.context
    runner = await context.runner(request.path_params["flow"])
    body = await json_body(request)
    unknown = sorted(set(body) - {"input", "target", "session", "workflow_id"})
    if unknown:
        raise Problem(400, f"{unknown[0]}: unknown key; allowed: input, target, session, "
                      "workflow_id")  # fmt: skip
    data = body.get("input") or {}
    options = {key: body.get(key) for key in ("target", "session", "workflow_id")}
    if not isinstance(data, dict) or any(
        value is not None and not isinstance(value, str) for value in options.values()
    ):
        raise Problem(400, "input is a JSON object; target, session and workflow_id strings")
    try:
        check_run(data, options["session"], options["workflow_id"])
        handle = await runner.start(data, target=options["target"],
                                    session_id=options["session"],
                                    workflow_id=options["workflow_id"])  # fmt: skip
    except ConfigError as err:
        raise Problem(422, str(err)) from None
    except WorkflowAlreadyStartedError as err:
        raise Problem(409, f"workflow id {err.workflow_id!r} is taken by a running run") from None
    link = context.ui_link(handle.workflow_id, handle.run_id)
    body = {"workflow_id": handle.workflow_id, "run_id": handle.run_id, "status": "running",
            "flow": runner.config.name, "link": link}  # fmt: skip
    return JSONResponse(body, 201, headers={"Location": f"/runs/{handle.workflow_id}"})
