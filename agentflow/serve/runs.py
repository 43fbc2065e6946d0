"""Runs, flows and topics over HTTP: what ``agentflow list``, ``status``, ``trace``, ``graph``
and ``topics`` show, read by the same library calls (``visibility``, ``inspect``, the bus)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from temporalio.client import Client

from agentflow import names
from agentflow.client import bus, visibility
from agentflow.errors import AgentflowError, ConfigError, NotFoundError
from agentflow.inspect.graph.flow import SESSION_EVENTS, config_graph, trace_graph
from agentflow.inspect.status import run_status
from agentflow.inspect.trace.read import (
    filter_entries,
    resolve_workflow_id,
    trace_chain,
    trace_session,
)
from agentflow.models.bus import subscribers_of
from agentflow.serve.api import json_response, query_flag, query_limit
from agentflow.serve.auth import Action
from agentflow.serve.context import ServeContext
from agentflow.serve.problems import Problem, principal

__all__ = ["find_run", "routes"]


def routes() -> list[BaseRoute]:
    return [
        Route("/flows", list_flows),
        Route("/flows/{flow}/graph", flow_graph),
        Route("/runs", list_runs),
        Route("/runs/{run}", show_run),
        Route("/runs/{run}/trace", run_trace),
        Route("/runs/{run}/graph", run_graph),
        Route("/sessions/{session}/trace", session_trace),
        Route("/topics", list_topics),
    ]


def _context(request: Request) -> ServeContext:
    context: ServeContext = request.app.state.context
    return context


async def find_run(client: Client, run: str) -> tuple[str, str | None]:
    """A workflow id or a run id: its workflow id (and run id); NotFoundError if neither."""
    try:
        return await resolve_workflow_id(client, run)
    except AgentflowError:  # it raises only when neither id is known
        raise NotFoundError(f"no run {run!r} in namespace {client.namespace}") from None


async def list_flows(request: Request) -> Response:
    await principal(request, Action.READ)
    flows = [{"name": c.name, "mode": c.mode, "agents": c.enabled_agents(),
              "task_queue": c.task_queue} for c in _context(request).configs.values()]  # fmt: skip
    return json_response({"flows": flows})


async def flow_graph(request: Request) -> Response:
    await principal(request, Action.READ)
    config = _context(request).config(request.path_params["flow"])
    return json_response({"flow": config.name, "mermaid": config_graph(config)})


async def list_runs(request: Request) -> Response:
    await principal(request, Action.READ)
    params = request.query_params
    client = await _context(request).client()
    try:
        runs = visibility.list_runs(client, params.get("session"), params.get("flow"),
                                    params.get("status"), query_limit(request, 50))  # fmt: skip
        rows = []
        async for run in runs:
            attrs = run.typed_search_attributes
            rows.append({"workflow_id": run.id, "run_id": run.run_id,
                         "status": visibility.status_name(run.status),
                         "flow": attrs.get(names.FLOW), "mode": attrs.get(names.MODE),
                         "session": attrs.get(names.SESSION),
                         "start_time": run.start_time})  # fmt: skip
    except ConfigError as err:
        raise Problem(400, str(err)) from None
    return json_response({"runs": rows})


async def show_run(request: Request) -> Response:
    await principal(request, Action.READ)
    context = _context(request)
    client = await context.client()
    workflow_id, _ = await find_run(client, request.path_params["run"])
    status = await run_status(client, workflow_id)
    return json_response({**status.model_dump(mode="json"),
                          "link": context.ui_link(workflow_id, status.run_id)})  # fmt: skip


async def run_trace(request: Request) -> Response:
    await principal(request, Action.READ)
    client = await _context(request).client()
    workflow_id, run_id = await find_run(client, request.path_params["run"])
    params = request.query_params
    entries = await trace_chain(client, workflow_id, params.get("run_id") or run_id)
    entries = filter_entries(entries, agent=params.get("agent"), event=params.get("event"),
                             flow_only=query_flag(request, "flow_only"))  # fmt: skip
    return json_response({"workflow_id": workflow_id,
                          "entries": [e.model_dump(mode="json") for e in entries]})  # fmt: skip


async def run_graph(request: Request) -> Response:
    await principal(request, Action.READ)
    client = await _context(request).client()
    workflow_id, run_id = await find_run(client, request.path_params["run"])
    last = query_limit_named(request, "last", SESSION_EVENTS)
    entries = await trace_chain(client, workflow_id, run_id)
    return json_response({"workflow_id": workflow_id, "mermaid": trace_graph(entries, last)})


def query_limit_named(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise Problem(400, f"{name}: a whole number of at least 1, not {text!r}")
    return int(text)


async def session_trace(request: Request) -> Response:
    await principal(request, Action.READ)
    client = await _context(request).client()
    session = request.path_params["session"]
    entries = await trace_session(client, session)
    if not entries:
        async for _ in visibility.list_runs(client, session=session, limit=1):
            break
        else:
            raise NotFoundError(f"no session {session!r} in namespace {client.namespace}")
    return json_response({"session": session,
                          "entries": [e.model_dump(mode="json") for e in entries]})  # fmt: skip


async def list_topics(request: Request) -> Response:
    """Every subscriber: its topics, flow, agent and task queue, and whether a worker serves
    it now (``agentflow topics --json``, one object per subscriber)."""
    await principal(request, Action.READ)
    context = _context(request)
    client = await context.client()
    found = await bus.registrations(client)
    rows, serving = [], {}
    for flow in sorted(found):
        entry = found[flow]
        for sub in subscribers_of(entry.config, entry.task_queue):
            if sub.task_queue not in serving:
                serving[sub.task_queue] = await visibility.has_workers(client, sub.task_queue)
            rows.append({"subscriber": sub.name, "flow": sub.flow, "agent": sub.agent,
                         "topics": sub.patterns, "ordered": sub.ordered,
                         "task_queue": sub.task_queue, "worker": entry.worker,
                         "registered_at": entry.registered_at,
                         "serving": serving[sub.task_queue]})  # fmt: skip
    return json_response({"subscribers": rows})
