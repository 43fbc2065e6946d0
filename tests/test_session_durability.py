"""Sessions lose nothing: events emitted into sessions survive SIGKILLed workers, no worker at
all, repeated ids, 10,000 events in one session and a restarted server.

Every agent call logs one line (``tests/session_agents.py``): session, event, n, agent and the
worker's pid. Since a session runs one agent at a time, each worker process's calls of one
session must be a contiguous stretch of the session's expected calls, and the next worker may
go back only over what was in flight when the previous one died: for regular agents the one
agent that was running, for local agents the steps since the last completed workflow task.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from agentflow.client.runner import Runner
from agentflow.client.sessions import EmitHandle, session_view
from agentflow.config import FlowConfig, load_config
from agentflow.inspect.trace.read import LOCAL_ACTIVITY_MARKER, run_histories
from agentflow.models.session import EventOutcome, SessionView
from agentflow.names import session_workflow_id
from agentflow.worker.devserver_process import DevServer
from agentflow.worker.serve import build_worker
from agentflow.workflows._checkpoint import CHECKPOINT_EVENTS
from tests._worker_process import WorkerProcess, wait_for_lines
from tests.conftest import REPO, flow_config, flow_runner
from tests.session_agents import Call, read_calls

AGENTS = ("a", "b", "c")
EVENTS_PER_SESSION = 10
# Every workflow task of a dead worker is handed to another after this long; local agents'
# results are recorded every 80 % of it (so at most that much local work runs again).
TASK_TIMEOUT_SECONDS = 2

FLOW = """
[agent_flow]
name = "session-durability"

[orchestration]
mode = "sequential"
sequential_agents = ["a", "b", "c"]
local_agents = {local}
workflow_task_timeout_seconds = {task_timeout}

[orchestration.retry]
initial_interval_seconds = 0.1

# timeout_seconds is the heartbeat timeout too: a dead worker's agent is retried after 3 s.
[agents.a]
handler = "tests.session_agents:log_call"
timeout_seconds = 3
[agents.b]
handler = "tests.session_agents:log_call"
timeout_seconds = 3
[agents.c]
handler = "tests.session_agents:log_call"
timeout_seconds = 3
"""


def write_flow(tmp_path: Path, local: bool) -> Path:
    path = tmp_path / "agentflow.toml"
    path.write_text(FLOW.format(local=str(local).lower(), task_timeout=TASK_TIMEOUT_SECONDS))
    return path


def event_data(n: int, log: Path, sleep: float = 0.0, last: str = "c") -> dict[str, object]:
    return {"n": n, "log_file": str(log), "sleep": sleep, "last": last}


async def emit_rounds(
    runner: Runner, sessions: Sequence[str], log: Path, sleep: float
) -> list[EmitHandle]:
    """EVENTS_PER_SESSION events into each session; event n of every session in one round."""
    handles: list[EmitHandle] = []
    for n in range(EVENTS_PER_SESSION):
        handles += await asyncio.gather(
            *(runner.emit(event_data(n, log, sleep), session_id=s) for s in sessions)
        )
    return handles


async def outcomes(handles: Sequence[EmitHandle], timeout: float) -> list[EventOutcome]:
    return list(await asyncio.wait_for(asyncio.gather(*(h.outcome() for h in handles)), timeout))


def check_calls(
    calls: list[Call], sessions: Sequence[str], restarts: Sequence[int], max_rerun: int
) -> list[int]:
    """Check every session's calls against the one order they may take; how many calls ran
    again after each restart (``restarts``: the log line where each new life begins).

    Per session, the calls between two restarts must be a contiguous stretch of the expected
    calls (every event's agents in order, events in emit order), starting where the previous
    stretch stopped or at most ``max_rerun`` calls before it: what was in flight when the
    worker or server died. Nothing is skipped; nothing finished before a crash runs again."""
    expected = [(n, agent) for n in range(EVENTS_PER_SESSION) for agent in AGENTS]
    bounds = [0, *restarts, len(calls)]
    reruns = [0] * len(restarts)
    for session in sessions:
        done = 0
        for life, (begin, end) in enumerate(pairwise(bounds)):
            steps = [(c.n, c.agent) for c in calls[begin:end] if c.session == session]
            if not steps:
                continue
            start = expected.index(steps[0])
            assert steps == expected[start : start + len(steps)], f"{session}: out of order"
            assert done - max_rerun <= start <= done, (
                f"{session}: after restart {life} the calls went on from {start} of "
                f"{len(expected)}; {done} had run before (at most {max_rerun} may run again)"
            )
            if life:
                reruns[life - 1] += done - start
            done = start + len(steps)
        assert done == len(expected), f"{session}: only {done} of {len(expected)} calls ran"
    return reruns


def check_views(views: list[SessionView]) -> None:
    for view in views:
        counts = view.counts
        assert counts.emitted == EVENTS_PER_SESSION, view
        assert counts.processed + counts.dead_lettered + len(view.queued) == counts.emitted
        assert counts.completed == EVENTS_PER_SESSION and counts.duplicates == 0, view
        assert view.context["seen"] == list(range(EVENTS_PER_SESSION)), view.context


def check_attempts(results: list[EventOutcome], calls: list[Call]) -> None:
    """A call ran again only as a retry Temporal recorded (never as a replayed workflow)."""
    logged = Counter(call.key for call in calls)
    for outcome in results:
        assert outcome.result is not None
        for agent in outcome.result.results:
            assert logged[outcome.event_id, agent.agent] <= agent.attempt, (outcome, agent)


class Crash:
    """What one crash scenario left behind: the sessions, every call, where each new worker
    took over (log line) and the pid of each worker, the outcomes and the sessions' views."""

    def __init__(self, sessions: list[str]) -> None:
        self.sessions = sessions
        self.restarts: list[int] = []
        self.pids: list[int] = []
        self.calls: list[Call] = []
        self.results: list[EventOutcome] = []
        self.views: list[SessionView] = []

    def check_pids(self) -> None:
        """Each stretch of the log between restarts was written by one worker process."""
        bounds = [0, *self.restarts, len(self.calls)]
        for pid, (begin, end) in zip(self.pids, pairwise(bounds), strict=True):
            assert {call.pid for call in self.calls[begin:end]} <= {pid}


async def crash_and_recover(
    client: Client, tmp_path: Path, *, local: bool, sessions: int, sleep: float,
    kill_fractions: Sequence[float],
) -> Crash:  # fmt: skip
    """Emit every event with no worker running, then run a worker process that is SIGKILLed
    once each fraction of the calls is logged and started again, until every event is done."""
    config_path = write_flow(tmp_path, local)
    config = load_config(config_path)
    task_queue = f"session-crash-{uuid.uuid4().hex[:8]}"
    runner = Runner(config, client, task_queue)
    log = tmp_path / "calls.log"
    crash = Crash([f"s{i}-{uuid.uuid4().hex[:6]}" for i in range(sessions)])
    handles = await emit_rounds(runner, crash.sessions, log, sleep)
    total = sessions * EVENTS_PER_SESSION * len(AGENTS)
    address = client.service_client.config.target_host
    worker = WorkerProcess(config_path, task_queue, address, tmp_path / "worker.log")
    try:
        for fraction in kill_fractions:
            crash.pids.append(started_pid(worker))
            await wait_for_lines(log, math.ceil(fraction * total), timeout=120)
            worker.kill()  # returns once the process is gone: its lines are all written
            crash.restarts.append(len(read_calls(log)))
        crash.pids.append(started_pid(worker))
        crash.results = await outcomes(handles, timeout=120)
        crash.views = [await session_view(client, config.name, name) for name in crash.sessions]
    finally:
        worker.stop()
    crash.calls = read_calls(log)
    return crash


def started_pid(worker: WorkerProcess) -> int:
    process = worker.start().process
    assert process is not None
    return process.pid


async def test_200_events_in_20_sessions_survive_two_worker_kills(
    client: Client, tmp_path: Path
) -> None:
    crash = await crash_and_recover(
        client, tmp_path, local=False, sessions=20, sleep=0.03, kill_fractions=(1 / 3, 2 / 3)
    )
    assert [r.status for r in crash.results] == ["completed"] * 200
    crash.check_pids()
    # Regular agents: a kill repeats at most the one agent each session was running.
    reruns = check_calls(crash.calls, crash.sessions, crash.restarts, max_rerun=1)
    # A kill normally lands mid-agent; on a loaded machine one may fall between agents.
    assert any(reruns), f"no kill hit a running agent: {reruns}"
    assert len(crash.calls) == 600 + sum(reruns)
    check_attempts(crash.results, crash.calls)
    check_views(crash.views)


async def test_local_agents_sessions_survive_a_worker_kill(client: Client, tmp_path: Path) -> None:
    sleep = 0.15
    crash = await crash_and_recover(
        client, tmp_path, local=True, sessions=6, sleep=sleep, kill_fractions=(1 / 2,)
    )
    assert [r.status for r in crash.results] == ["completed"] * 60
    crash.check_pids()
    # Local agents: what ran since the last completed workflow task runs again: at most the
    # 80 % of the task timeout after which the SDK records local results, plus the one running.
    window = math.ceil(0.8 * TASK_TIMEOUT_SECONDS / sleep) + 1
    reruns = check_calls(crash.calls, crash.sessions, crash.restarts, max_rerun=window)
    assert all(reruns), "the kill hit no running agent"
    assert len(crash.calls) == 180 + sum(reruns)
    check_views(crash.views)


def signalled_event_ids(events: Sequence[HistoryEvent]) -> list[str]:
    """The event ids of ``emit`` / ``emit_by_key`` signals (the first carries the config)."""
    ids = []
    for event in events:
        attributes = event.workflow_execution_signaled_event_attributes
        payload = attributes.input.payloads[0]
        request = pydantic_data_converter.payload_converter.from_payload(payload, dict)
        ids.append(request["event"]["id"])
    return ids


async def test_events_emitted_with_no_worker_are_recorded_then_processed(
    client: Client, tmp_path: Path
) -> None:
    config = flow_config("sequential", {"a": "tests.session_agents:log_call"},
                         sequential_agents=["a"])  # fmt: skip
    task_queue = f"no-worker-{uuid.uuid4().hex[:8]}"
    runner = Runner(config, client, task_queue)
    log, session = tmp_path / "calls.log", f"s-{uuid.uuid4().hex[:8]}"
    handles = [await runner.emit(event_data(n, log, last="a"), session_id=session)
               for n in range(5)]  # fmt: skip
    history = await client.get_workflow_handle(handles[0].workflow_id).fetch_history()
    kinds = Counter(event.event_type for event in history.events)
    signalled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    signals = [event for event in history.events if event.event_type == signalled]
    assert signalled_event_ids(signals) == [h.event_id for h in handles]
    assert kinds[EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED] == 0  # no worker has seen them
    assert not log.exists()

    async with build_worker(client, [(config, REPO)], task_queue=task_queue):
        results = await outcomes(handles, timeout=60)
        view = await session_view(client, config.name, session)
    assert [r.status for r in results] == ["completed"] * 5
    assert [call.event for call in read_calls(log)] == [h.event_id for h in handles]
    assert view.context["seen"] == [0, 1, 2, 3, 4]
    assert (view.counts.emitted, view.counts.completed) == (5, 5)


async def test_a_repeated_event_id_is_processed_once_and_counted(
    client: Client, tmp_path: Path
) -> None:
    config = flow_config("sequential", {"a": "tests.session_agents:log_call"},
                         sequential_agents=["a"])  # fmt: skip
    task_queue = f"dedupe-{uuid.uuid4().hex[:8]}"
    runner = Runner(config, client, task_queue)
    log, session = tmp_path / "calls.log", f"s-{uuid.uuid4().hex[:8]}"
    ids = [f"{session}-{name}" for name in ("queued", "waited", "signalled", "twice")]

    async def emit(n: int, event_id: str, wait: bool = False) -> EmitHandle:
        # A repeat carries other data (n + 100): had it been processed, the context shows it.
        return await runner.emit(event_data(n, log, last="a"), session_id=session,
                                 event_id=event_id, wait=wait)  # fmt: skip

    # Both copies wait in the history before any worker runs: the second is never queued.
    first = [await emit(0, ids[0]), await emit(100, ids[0])]
    async with build_worker(client, [(config, REPO)], task_queue=task_queue):
        waited = [await emit(1, ids[1], wait=True), await emit(101, ids[1])]
        signalled = [await emit(2, ids[2]), await emit(102, ids[2], wait=True)]
        twice = [await emit(3, ids[3], wait=True), await emit(103, ids[3], wait=True)]
        results = await outcomes([*first, *waited, *signalled, *twice], timeout=60)
        view = await session_view(client, config.name, session)
    assert [r.status for r in results] == ["completed"] * 8
    assert [r.event_id for r in results] == [i for i in ids for _ in range(2)]
    assert Counter(call.event for call in read_calls(log)) == dict.fromkeys(ids, 1)
    assert view.context["seen"] == [0, 1, 2, 3]
    assert (view.counts.emitted, view.counts.completed, view.counts.duplicates) == (4, 4, 4)


BOUNDED_EVENTS = 10_000
EMIT_BATCH = 200


async def wait_until_processed(
    client: Client, config: FlowConfig, session: str, count: int, timeout: float
) -> SessionView:
    """Poll the session until it has processed ``count`` events. Every poll is a query the
    busy session answers between its workflow tasks (~0.1 s of the worker's CPU with hundreds
    queued), so twice a second: 20 a second made the 10,000-event test 20-25 % slower."""
    deadline = time.monotonic() + timeout
    while True:
        view = await session_view(client, config.name, session)
        if view.counts.processed >= count:
            return view
        if time.monotonic() > deadline:
            raise TimeoutError(f"session {session}: {view.counts} after {timeout} s")
        await asyncio.sleep(0.5)


# 90-125 s on 2 cores with little else running; 5-6 minutes when the machine is busy.
@pytest.mark.timeout(600)
async def test_a_session_of_10000_events_keeps_every_run_bounded(client: Client) -> None:
    config = flow_config("sequential", {"count": "tests.session_agents:count"},
                         sequential_agents=["count"], local_agents=True)  # fmt: skip
    assert config.sessions.events_per_run == 200
    session = f"s-{uuid.uuid4().hex[:8]}"
    async with flow_runner(client, config) as runner:
        for emitted in range(EMIT_BATCH, BOUNDED_EVENTS + 1, EMIT_BATCH):
            await asyncio.gather(*(runner.emit({}, session_id=session) for _ in range(EMIT_BATCH)))
            # At most two batches queued: far below the session's queue limit (1,000). The
            # batch just emitted keeps the worker busy while this waits for the one before.
            await wait_until_processed(client, config, session, emitted - EMIT_BATCH, 60)
        view = await wait_until_processed(client, config, session, BOUNDED_EVENTS, 60)
        lengths, markers = [], 0
        async for _, events in run_histories(client, session_workflow_id(config.name, session)):
            lengths.append(len(events))
            markers += sum(
                e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
                for e in events
            )  # not the version markers of workflow.patched
    assert max(lengths) < 10_000, lengths
    # The view may predate the last continue-as-new (after the 10,000th event): one run more.
    assert len(lengths) >= view.runs >= BOUNDED_EVENTS // config.sessions.events_per_run
    assert markers == BOUNDED_EVENTS  # each event's agent recorded once, in one of the runs
    assert view.context["count"] == BOUNDED_EVENTS
    counts = view.counts
    assert (counts.emitted, counts.completed, counts.duplicates) == (BOUNDED_EVENTS,) * 2 + (0,)
    assert counts.dead_lettered == 0 and not view.queued


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_sessions_survive_a_server_restart(tmp_path: Path) -> None:
    server = DevServer(port=free_port(), db=tmp_path / "temporal.db", headless=True)
    server.start()
    worker: WorkerProcess | None = None
    try:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        config_path = write_flow(tmp_path, local=False)
        config = load_config(config_path)
        task_queue = f"server-restart-{uuid.uuid4().hex[:8]}"
        runner = Runner(config, client, task_queue)
        log = tmp_path / "calls.log"
        sessions = [f"s{i}-{uuid.uuid4().hex[:6]}" for i in range(2)]
        handles = await emit_rounds(runner, sessions, log, sleep=0.1)
        worker = WorkerProcess(config_path, task_queue, server.address, tmp_path / "worker.log")
        worker.start()
        # Clients wait on the outcomes across the restart (their Updates are cut off by it).
        waiting = asyncio.create_task(outcomes(handles, timeout=120))
        await wait_for_lines(log, 30, timeout=60)
        assert server.process is not None
        server.process.kill()  # SIGKILL: whatever the server held in memory is gone
        server_killed = server.process.wait()
        server.start()  # the same port and database
        restart = len(read_calls(log))
        results = await waiting
        views = [await session_view(client, config.name, name) for name in sessions]
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
    assert [r.status for r in results] == ["completed"] * 20
    calls = read_calls(log)
    assert server_killed == -9
    assert restart < len(calls), "the server was killed after the last call"
    assert len({call.pid for call in calls}) == 1  # the same worker, reconnected
    reruns = check_calls(calls, sessions, [restart], max_rerun=1)
    assert len(calls) == 60 + sum(reruns)
    check_attempts(results, calls)
    check_views(views)


async def test_a_burst_of_emits_reruns_at_most_one_checkpoint_of_local_agents(
    client: Client, tmp_path: Path
) -> None:
    """Over 100 signals buffered while a workflow task runs local agents make the server fail
    that task, and its local agents run again. The session ends its workflow task between
    queued events after CHECKPOINT_EVENTS events or CHECKPOINT_LOCAL_MS of local work, so a
    burst re-runs at most that much (before the checkpoint: up to 200 of these 300 events)."""
    config = flow_config("sequential", {"a": "tests.session_agents:log_call"},
                         sequential_agents=["a"], local_agents=True)  # fmt: skip
    log, session = tmp_path / "calls.log", f"s-{uuid.uuid4().hex[:8]}"

    async def burst(runner: Runner, first: int) -> None:
        await asyncio.gather(
            *(runner.emit(event_data(n, log, sleep=0.02, last="a"), session_id=session)
              for n in range(first, first + 150))
        )  # fmt: skip

    async with flow_runner(client, config) as runner:
        await burst(runner, 0)
        await wait_for_lines(log, 1)  # the session runs local agents: the next burst lands mid-task
        await burst(runner, 150)
        view = await wait_until_processed(client, config, session, 300, timeout=120)
    assert view.counts.completed == 300
    repeated = [event for event, calls in Counter(c.event for c in read_calls(log)).items()
                if calls > 1]  # fmt: skip
    assert len(repeated) <= CHECKPOINT_EVENTS, f"{len(repeated)} of 300 events ran again"
