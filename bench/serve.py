"""W11: CloudEvents over HTTP (``POST /events`` of ``agentflow serve``) against ``Runner.emit``.

The same events, into the same number of sessions of one flow, the same number of calls in
flight: once through ``Runner.emit`` (signal-with-start, returns once Temporal recorded the
event) and once as structured CloudEvents posted to the app on uvicorn in this process, which
answers 202 after the same call. The posts go through a minimal keep-alive HTTP/1.1 client
(``_Connections``), as a load generator sends them. Both measure acceptance, what the 202
promises: the sessions' task queue has no worker, so processing competes with neither (the
events stay queued in their sessions; the dev server is thrown away after the run). Which
goes first alternates between repeats.

- ``emit_*``, ``http_*``: events/s over the phase, and the p50/p95 of one call.
- ``cost_ratio``: HTTP seconds ÷ emit seconds (target ≤ 1.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from functools import partial

import uvicorn
from temporalio.client import Client

from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, parse_config
from agentflow.serve.app import create_app
from agentflow.serve.auth import ApiKeys
from agentflow.serve.context import ServeContext
from bench.systems import REPO, AgentflowSystem
from bench.workloads import p95

Metrics = dict[str, float]
IN_FLIGHT = 20
TOKEN = f"bench-{uuid.uuid4().hex}"


def _flow() -> FlowConfig:
    name = f"w11-{uuid.uuid4().hex[:6]}"
    raw = {"agent_flow": {"name": name},
           "orchestration": {"mode": "sequential", "sequential_agents": ["a"]},
           "agents": {"a": {"handler": "bench.agents:noop"}},
           "temporal": {"task_queue": f"{name}-q"}}  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


@contextlib.asynccontextmanager
async def _server(client: Client, config: FlowConfig) -> AsyncIterator[str]:
    keys = ApiKeys({"bench": ("emitter", TOKEN)})
    context = ServeContext({config.name: config}, keys, temporal_client=client)
    server = uvicorn.Server(uvicorn.Config(create_app(context), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="off",
                                           timeout_keep_alive=120))  # fmt: skip
    task = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def _timed(calls: Sequence[Callable[[], Awaitable[None]]]) -> tuple[float, list[float]]:
    gate, latencies = asyncio.Semaphore(IN_FLIGHT), []

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            began = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - began) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one(call) for call in calls))
    return time.perf_counter() - started, latencies


def _events(sessions: int, events: int) -> Iterator[tuple[str, str]]:
    """(event id, session) pairs, the sessions taking turns."""
    run = uuid.uuid4().hex[:6]
    for n in range(sessions * events):
        yield f"e-{run}-{n}", f"s-{run}-{n % sessions}"


async def w11_serve(
    system: AgentflowSystem, sessions: int, events: int, http_first: Iterator[bool]
) -> Metrics:
    client = system.client
    config = _flow()
    runner = Runner(config, client)
    metrics: Metrics = {}
    async with _server(client, config) as url, _Connections(url) as http:

        async def by_emit() -> None:
            calls = [partial(_emit, runner, i, s) for i, s in _events(sessions, events)]
            seconds, latencies = await _timed(calls)
            _record(metrics, "emit", seconds, latencies)

        async def by_http() -> None:
            calls = [partial(http.post, _body(i, s)) for i, s in _events(sessions, events)]
            seconds, latencies = await _timed(calls)
            _record(metrics, "http", seconds, latencies)

        phases = (by_http, by_emit) if next(http_first) else (by_emit, by_http)
        for phase in phases:
            await phase()
    metrics["cost_ratio"] = metrics["http_seconds"] / metrics["emit_seconds"]
    return metrics


async def _emit(runner: Runner, event_id: str, session: str) -> None:
    await runner.emit({"n": 1}, session_id=session, target="a", event_id=event_id)


def _body(event_id: str, session: str) -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "/bench", "type": "w11",
                       "target": "a", "subject": session, "data": {"n": 1}}).encode()  # fmt: skip


class _Connections:
    """``IN_FLIGHT`` keep-alive HTTP/1.1 connections, each used by one call at a time.

    Why not httpx: in this process its connection pool costs more event-loop time per request
    than the server's whole handling of it (``_assign_requests_to_connections``, seen with
    cProfile), so it measured the client. This writes a prepared request and reads the
    response, as a load generator (wrk, hey) does.
    """

    def __init__(self, url: str) -> None:
        self.host, _, port = url.removeprefix("http://").partition(":")
        self.port = int(port)
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def __aenter__(self) -> _Connections:
        for _ in range(IN_FLIGHT):
            await self.idle.put(await asyncio.open_connection(self.host, self.port))
        return self

    async def __aexit__(self, *exc: object) -> None:
        while not self.idle.empty():
            _, writer = self.idle.get_nowait()
            writer.close()

    async def post(self, body: bytes) -> None:
        reader, writer = await self.idle.get()
        head = (f"POST /events HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Bearer {TOKEN}\r\n"
                "Content-Type: application/cloudevents+json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
        writer.write(head.encode() + body)
        status = (await reader.readline()).split(b" ", 2)[1]
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        await self.idle.put((reader, writer))
        if status != b"202":
            raise RuntimeError(f"POST /events: {status.decode()} {answer.decode()}")


def _record(metrics: Metrics, name: str, seconds: float, latencies: list[float]) -> None:
    metrics[f"{name}_seconds"] = seconds
    metrics[f"{name}_events_per_s"] = len(latencies) / seconds
    metrics[f"{name}_p50_ms"] = statistics.median(latencies)
    metrics[f"{name}_p95_ms"] = p95(latencies)
