"""``agentflow serve``: CloudEvents in, the REST API, the stream, keys and roles, problems.

One server for the module: the real app on uvicorn on 127.0.0.1, talking to the real dev
server, whose flows a real worker serves; httpx is the HTTP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from agentflow.client.sessions import session_view
from agentflow.config import FlowConfig, parse_config
from agentflow.errors import AgentflowError
from agentflow.serve.app import create_app
from agentflow.serve.auth import ApiKeys
from agentflow.serve.context import ServeContext
from agentflow.worker.serve import serving
from tests.conftest import REPO

T = TypeVar("T")
UID = uuid.uuid4().hex[:8]
TOPIC = f"srv.t{UID}"
TOKENS = {role: f"{role}-token-{uuid.uuid4().hex}" for role in
          ("viewer", "emitter", "approver", "admin")}  # fmt: skip
APPEND = "tests.agents:append"


def flow(name: str, agents: dict[str, Any], order: list[str], queue: str) -> FlowConfig:
    raw = {"agent_flow": {"name": f"{name}-{UID}"},
           "orchestration": {"mode": "sequential", "sequential_agents": order,
                             "retry": {"initial_interval_seconds": 0.05}},
           "agents": {a: t if isinstance(t, dict) else {"handler": t} for a, t in agents.items()},
           "temporal": {"task_queue": queue}}  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


@dataclass
class Served:
    url: str
    context: ServeContext
    events: FlowConfig  # remember, check: a session's events; check dead-letters on demand
    approve: FlowConfig  # gate waits for a person, then done
    bus: FlowConfig  # listener subscribes to TOPIC
    burst: FlowConfig  # one local agent
    tmp: Path

    def http(self, role: str | None = "admin") -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
async def served(
    env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    client = env.client
    queue = f"srv-{UID}"
    events = flow(
        "srv-ev",
        {"remember": "tests.event_agents:remember", "check": "tests.event_agents:check"},
        ["remember", "check"],
        queue,
    )
    approve = flow("srv-ap", {"gate": {"handler": APPEND, "approval": "before"}, "done": APPEND},
                   ["gate", "done"], queue)  # fmt: skip
    bus = flow("srv-bus", {"a": "tests.agents:bus_agent",
                           "listener": {"handler": "tests.agents:bus_agent",
                                        "subscribes": [TOPIC]}}, ["a"], queue)  # fmt: skip
    # Served only once the burst is in (test_a_burst_of_1000_events_loses_none).
    burst = flow("srv-burst", {"tally": "tests.event_agents:remember"}, ["tally"], f"{queue}-b")
    keys = ApiKeys({role: (role, token) for role, token in TOKENS.items()})
    configs = {c.name: c for c in (events, approve, bus, burst)}
    context = ServeContext(configs, keys, temporal_client=client, max_body_bytes=64 * 1024)
    server = uvicorn.Server(uvicorn.Config(create_app(context), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="off",
                                           timeout_keep_alive=120))  # fmt: skip
    async with serving(client, [(c, REPO) for c in (events, approve, bus)]):
        task = asyncio.ensure_future(server.serve())
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield Served(f"http://127.0.0.1:{port}", context, events, approve, bus, burst,
                         tmp_path_factory.mktemp("serve"))  # fmt: skip
        finally:
            server.should_exit = True
            await task


async def until(check: Callable[[], Awaitable[T | None]], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{check} never held")
        await asyncio.sleep(0.1)


def problem(response: httpx.Response, status: int, detail: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    assert detail in body["detail"], body
    return body


def structured(**attrs: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "source": "/tests", "id": uuid.uuid4().hex, **attrs}


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def test_cloudevents_structured_binary_batch_and_a_retry(served: Served) -> None:
    calls, log, session = served.tmp / "calls", served.tmp / "bus.log", f"s-{UID}-ce"
    data = {"calls_file": str(calls), "msg": "one"}
    async with served.http("emitter") as http:
        one = structured(
            type="order.created",
            target="remember",
            subject=session,
            data=data,
            flow=served.events.name,
        )
        response = await http.post(
            "/events", json=one, headers={"content-type": "application/cloudevents+json"}
        )
        assert response.status_code == 202, response.text
        assert response.json()["id"] == one["id"] and response.json()["session"] == session
        again = await http.post(
            "/events",
            content=json.dumps(one),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert again.status_code == 202  # a client's retry: accepted, processed once
        binary = {"ce-specversion": "1.0", "ce-id": f"bin-{UID}", "ce-source": "/tests",
                  "ce-type": "order.paid", "ce-target": "remember", "ce-subject": session,
                  "content-type": "application/json"}  # fmt: skip
        response = await http.post("/events", content=json.dumps({**data, "msg": "two"}),
                                   headers=binary)  # fmt: skip
        assert response.status_code == 202 and response.json()["id"] == f"bin-{UID}"
        batch = [structured(type="x", target="remember", subject=session,
                            data={**data, "msg": "three"}),
                 structured(type=TOPIC, data={"log_file": str(log), "n": 1})]  # fmt: skip
        response = await http.post(
            "/events",
            content=json.dumps(batch),
            headers={"content-type": "application/cloudevents-batch+json"},
        )
        assert response.status_code == 202, response.text
        accepted = response.json()["accepted"]
        assert [a["id"] for a in accepted] == [b["id"] for b in batch]
        assert accepted[1]["published"] == TOPIC and accepted[1]["workflow_id"]

    view = await until(lambda: _processed(served, served.events.name, session, 3))
    assert view.counts.duplicates == 1
    assert sorted(lines(calls)) == sorted([one["id"], f"bin-{UID}", batch[0]["id"]])
    delivered = await until(lambda: asyncio.sleep(0, [json.loads(x) for x in
                                                      (log.read_text().splitlines()
                                                       if log.exists() else [])]))  # fmt: skip
    assert [d["agent"] for d in delivered] == ["listener"] and delivered[0]["n"] == 1


async def _processed(served: Served, flow: str, session: str, count: int) -> Any:
    try:
        view = await session_view(served.context.temporal_client, flow, session)  # type: ignore[arg-type]
    except AgentflowError:
        return None
    return view if view.counts.processed >= count else None


async def test_bad_events_and_requests_get_problem_bodies(served: Served) -> None:
    ce = {"content-type": "application/cloudevents+json"}
    async with served.http("emitter") as http:
        problem(await http.post("/events", content=b"{nope", headers=ce), 400, "not JSON")
        problem(await http.post("/events", json={"id": "x"}, headers=ce), 400, "source")
        problem(await http.post("/events", json={"a": 1}), 400, "not a CloudEvent")
        listed = json.dumps(structured(type="t", target="remember", data=[1]))
        problem(await http.post("/events", content=listed, headers=ce), 400,
                "data must be a JSON object")  # fmt: skip
        problem(await http.post("/events", content=b"[]",
                                headers={"content-type": "application/cloudevents-batch+json"}),
                400, "non-empty")  # fmt: skip
        nobody = json.dumps(structured(type="x", target="nobody"))
        problem(await http.post("/events", content=nobody, headers=ce), 422,
                "unknown target 'nobody'")  # fmt: skip
        problem(await http.post("/events", content=json.dumps(structured(type=f"none.{UID}")),
                                headers=ce), 422, "unknown topic")  # fmt: skip
        problem(await http.post("/events", content=json.dumps(structured(type="a b")),
                                headers=ce), 422, "not a topic")  # fmt: skip
        big = json.dumps(structured(type=TOPIC, data={"x": "y" * 70_000}))
        problem(await http.post("/events", content=big, headers=ce), 413, "over 65536 bytes")
        problem(await http.post("/flows/nope/runs", json={}), 404, "no flow 'nope'")
        problem(await http.post(f"/flows/{served.events.name}/runs", json={"inptu": {}}), 400,
                "inptu: unknown key")  # fmt: skip
        problem(
            await http.post(f"/flows/{served.events.name}/runs", json={"target": "ghost"}),
            422,
            "no enabled agent 'ghost'",
        )
        problem(await http.get(f"/runs/no-such-run-{UID}"), 404, "no run")
        problem(await http.get(f"/flows/{served.events.name}/sessions/none-{UID}"), 404,
                "no session")  # fmt: skip
        problem(await http.get(f"/dead-letters/none-{UID}"), 404, "no dead letter")
        problem(await http.get("/sessions?limit=0"), 400, "limit")
        problem(await http.get("/nowhere"), 404)
        problem(await http.delete("/events"), 405)


async def test_keys_roles_and_insecure_local(served: Served) -> None:
    async with served.http(None) as anonymous:
        body = problem(await anonymous.get("/flows"), 401, "needs an API key")
        assert body["instance"] == "/flows"
        response = await anonymous.get("/flows", headers={"Authorization": "Bearer wrong"})
        problem(response, 401, "not known")
        assert response.headers["www-authenticate"].startswith("Bearer")
    async with served.http("viewer") as viewer:
        assert (await viewer.get("/flows")).status_code == 200
        event = structured(type=TOPIC, data={})
        problem(await viewer.post("/events", json=event,
                                  headers={"content-type": "application/cloudevents+json"}),
                403, "'viewer' has role 'viewer', which may not emit")  # fmt: skip
        problem(await viewer.post("/runs/x/approve", json={}), 403, "may not decide")
    async with served.http("approver") as approver:
        problem(await approver.post("/dead-letters/x/purge"), 403, "may not admin")
    local = ServeContext({}, ApiKeys({}), insecure_local=True)
    transport = httpx.ASGITransport(app=create_app(local))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        assert (await http.get("/flows")).json() == {"flows": []}
        assert (await http.get("/")).headers["location"] == "/ui/"
        spec = (await http.get("/openapi.json")).json()
        assert spec["openapi"].startswith("3.1") and "/events" in spec["paths"]
        page = await http.get("/docs")
        assert "/dead-letters/{letter}/redrive" in page.text and "<script" not in page.text


async def test_a_run_started_over_http_streams_traces_and_graphs(served: Served) -> None:
    async with served.http("emitter") as http:
        response = await http.post(f"/flows/{served.approve.name}/runs",
                                   json={"input": {"trail": []}})  # fmt: skip
        assert response.status_code == 201, response.text
        run = response.json()
        assert run["link"].endswith(f"/workflows/{run['workflow_id']}/{run['run_id']}/history")
        kinds: list[str] = []
        async with http.stream("GET", f"/runs/{run['workflow_id']}/stream") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    kinds.append(line.removeprefix("event: "))
                if kinds[-1:] == ["approval_waiting"]:
                    break
        assert kinds[0] == "flow_started" and "approval_waiting" in kinds

        pending = await until(lambda: _pending(http, run["workflow_id"]))
        assert pending[0]["agent"] == "gate" and pending[0]["link"]
        problem(await http.post(f"/runs/{run['workflow_id']}/approve", json={}), 403)
        async with served.http("approver") as approver:
            problem(await approver.post(f"/runs/{run['workflow_id']}/reject", json={}), 422,
                    "reason")  # fmt: skip
            problem(
                await approver.post(f"/runs/{run['workflow_id']}/approve", json={"agent": "done"}),
                409,
                "not waiting",
            )
            decided = await approver.post(f"/runs/{run['workflow_id']}/approve",
                                          json={"comment": "fine"})  # fmt: skip
            assert decided.status_code == 200, decided.text
            assert (decided.json()["decided_by"], decided.json()["comment"]) == ("approver", "fine")
            again = await approver.post(f"/runs/{run['workflow_id']}/approve", json={})
            problem(again, 409)
        status = await until(lambda: _ended(http, run["workflow_id"]))
        assert status["status"] == "completed" and status["progress"]["completed"] == 2
        trace = (await http.get(f"/runs/{run['workflow_id']}/trace")).json()["entries"]
        assert {"gate", "done"} <= {entry["agent"] for entry in trace}
        graph = (await http.get(f"/runs/{run['workflow_id']}/graph")).json()["mermaid"]
        assert graph.startswith("flowchart") and "gate" in graph
        chart = (await http.get(f"/flows/{served.approve.name}/graph")).json()["mermaid"]
        assert "done" in chart
        flows = (await http.get("/flows")).json()["flows"]
        assert served.approve.name in {f["name"] for f in flows}
        runs = (await http.get(f"/runs?flow={served.approve.name}")).json()["runs"]
        assert run["workflow_id"] in {r["workflow_id"] for r in runs}
        topics = (await http.get("/topics")).json()["subscribers"]
        assert any(TOPIC in row["topics"] and row["serving"] for row in topics)


async def _pending(http: httpx.AsyncClient, workflow_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await http.get("/approvals")).json()["approvals"]
    return [row for row in rows if row["workflow_id"] == workflow_id]


async def _ended(http: httpx.AsyncClient, workflow_id: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (await http.get(f"/runs/{workflow_id}")).json()
    return body if body["status"] != "running" else None


async def test_sessions_and_dead_letters_over_http(served: Served) -> None:
    block, session = served.tmp / "block", f"s-{UID}-dl"
    block.write_text("x")
    name = served.events.name
    events = [
        structured(
            type="t",
            target="remember",
            subject=session,
            data={"block_file": str(block), "msg": str(n)},
        )
        for n in range(2)
    ]
    async with served.http("admin") as http:
        response = await http.post(
            "/events",
            content=json.dumps(events),
            headers={"content-type": "application/cloudevents-batch+json"},
        )
        assert response.status_code == 202, response.text

        async def letters() -> list[dict[str, Any]]:
            rows = (await http.get(f"/dead-letters?session={session}")).json()["dead_letters"]
            return rows if len(rows) == 2 else []

        first, second = await until(letters)
        shown = (await http.get(f"/dead-letters/{first['id']}")).json()
        assert shown["status"] == "open" and shown["letter"]["session_id"] == session
        block.unlink()
        async with served.http("approver") as approver:
            problem(await approver.post(f"/dead-letters/{first['id']}/redrive"), 403)
        redriven = await http.post(f"/dead-letters/{first['id']}/redrive")
        assert redriven.status_code == 200, redriven.text
        assert redriven.json()["outcome"] == "redriven"
        assert redriven.json()["decided_by"] == "admin"
        body = problem(await http.post(f"/dead-letters/{first['id']}/redrive"), 409,
                       "was redriven by admin")  # fmt: skip
        assert body["redriven_as"] == redriven.json()["event_id"]
        assert (await http.post(f"/dead-letters/{second['id']}/purge")).status_code == 200
        problem(await http.post(f"/dead-letters/{second['id']}/purge"), 409, "purged")

        async def done() -> dict[str, Any] | None:
            view = (await http.get(f"/flows/{name}/sessions/{session}")).json()
            return view if view["counts"]["completed"] == 1 else None

        view = await until(done)
        assert view["counts"]["dead_lettered"] == 2 and view["link"]
        rows = (await http.get(f"/sessions?flow={name}")).json()["sessions"]
        assert session in {row["session"] for row in rows}
        closed = await http.post(f"/flows/{name}/sessions/{session}/close")
        assert closed.status_code == 200 and closed.json()["by"] == "admin"
        await until(lambda: _closed(http, name, session))
        problem(await http.post(f"/flows/{name}/sessions/{session}/close"), 409, "closed")
        trace = (await http.get(f"/sessions/{session}/trace")).json()["entries"]
        assert any(entry["action"] == "dead-lettered" for entry in trace)


async def _closed(http: httpx.AsyncClient, flow: str, session: str) -> bool:
    view = (await http.get(f"/flows/{flow}/sessions/{session}")).json()
    return bool(view["status"] != "running")


async def test_a_burst_of_1000_events_loses_none(served: Served) -> None:
    """500 single events and 10 batches of 50, 20 requests in flight (a busy webhook
    sender), into sessions no worker serves yet; then a worker starts, and every event is
    processed."""
    calls, sessions = served.tmp / "burst", [f"b-{UID}-{n}" for n in range(100)]
    events = [structured(type="burst", target="tally", subject=sessions[n % 100],
                         data={"calls_file": str(calls)}) for n in range(1000)]  # fmt: skip
    bodies = [(json.dumps(e), "application/cloudevents+json") for e in events[:500]] + [
        (json.dumps(events[n:n + 50]), "application/cloudevents-batch+json")
        for n in range(500, 1000, 50)
    ]  # fmt: skip
    gate = asyncio.Semaphore(20)
    async with served.http("emitter") as http:

        async def post(body: str, content_type: str) -> int:
            async with gate:
                response = await http.post(
                    "/events", content=body, headers={"content-type": content_type}
                )
                return response.status_code

        codes = await asyncio.gather(*(post(body, kind) for body, kind in bodies))
    assert codes == [202] * len(bodies)

    async def all_processed() -> int:
        views = [await _processed(served, served.burst.name, s, 0) for s in sessions]
        total = sum(view.counts.processed for view in views if view)
        return total if total >= 1000 else 0

    async with serving(served.context.temporal_client, [(served.burst, REPO)]):  # type: ignore[arg-type]
        assert await until(all_processed, 120) == 1000
    # Temporal runs an activity at least once: a call may repeat, an event is never missed.
    assert set(lines(calls)) == {e["id"] for e in events}


def test_a_failure_is_a_500_problem_without_the_data_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from agentflow.serve.app import CatchAll

    secret = f"payload-{uuid.uuid4().hex}"  # what the request carried, say

    async def fails(request: Any) -> Any:
        raise ValueError(secret)

    app = Starlette(routes=[Route("/x", fails)])
    app.add_middleware(CatchAll)
    with TestClient(app, raise_server_exceptions=False) as http:
        response = http.get("/x")
    problem(response, 500, "its log has the details")
    assert "ValueError" in caplog.text and secret not in caplog.text
    assert secret not in response.text


def test_serve_refuses_insecure_local_off_localhost(capsys: pytest.CaptureFixture[str]) -> None:
    from agentflow.cli.main import main

    with contextlib.suppress(SystemExit):
        code = main(["serve", "--insecure-local", "--host", "0.0.0.0"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--insecure-local: only with --host 127.0.0.1" in err[0]


def test_api_keys_from_the_environment_and_a_file(tmp_path: Path) -> None:
    from agentflow.errors import ConfigError
    from agentflow.serve.auth import Action, load_keys

    token = "t" * 16
    keys = load_keys(
        environ={"AGENTFLOW_API_KEYS": f"ci:emitter:{token}:with:colons, ops:admin:{'o' * 20}"}
    )
    found = keys.lookup(f"{token}:with:colons")
    assert found is not None and (found.name, found.role) == ("ci", "emitter")
    assert found.may(Action.EMIT) and not found.may(Action.DECIDE) and keys.lookup("x") is None
    assert (
        keys.signing_secret()
        == load_keys(
            environ={"AGENTFLOW_API_KEYS": f"ops:admin:{'o' * 20},ci:emitter:{token}:with:colons"}
        ).signing_secret()
    )
    for bad, message in [("ci:emitter", "not NAME:ROLE:TOKEN"),
                         (f"ci:boss:{token}", "unknown role 'boss'"),
                         ("ci:viewer:short", "at least 16 characters"),
                         (f"a:viewer:{token},b:admin:{token}", "the same token")]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            load_keys(environ={"AGENTFLOW_API_KEYS": bad})
    file = tmp_path / "keys.toml"
    file.write_text(f'[keys.alice]\nrole = "approver"\ntoken = "{token}"\n')
    assert load_keys(str(file)).lookup(token) == type(found)("alice", "approver")
    file.write_text(f'[keys.alice]\nrole = "approver"\ntokn = "{token}"\n')
    with pytest.raises(ConfigError, match=r"keys.toml: keys.alice.tokn: unknown key"):
        load_keys(str(file))
