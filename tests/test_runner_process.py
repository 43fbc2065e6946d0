"""A one-process runner (``async with runner:``, agents registered in code) SIGKILLed while its
session has events in flight: started again, it processes every emitted event exactly once,
the events its agents emitted included."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from temporalio.client import Client

from agentflow.client.sessions import session_view
from agentflow.models.session import SessionView
from tests.conftest import REPO

EVENTS = 40
FLOW = """\
[agent_flow]
name = "{name}"
[orchestration]
mode = "route"
[temporal]
task_queue = "{name}"
"""


def _start(client: Client, tmp_path: Path, flow: Path, log: Path, session: str,
           count: int) -> subprocess.Popen[bytes]:  # fmt: skip
    env = {**os.environ, "TEMPORAL_ADDRESS": client.service_client.config.target_host,
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    command = [sys.executable, str(REPO / "tests" / "runner_program.py"), str(flow), str(log),
               session, str(count)]  # fmt: skip
    with (tmp_path / "program.log").open("ab") as out:
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)


def _calls(log: Path) -> list[tuple[str, str]]:
    if not log.exists():
        return []
    return [tuple(line.split()) for line in log.read_text().splitlines()]  # type: ignore[misc]


async def _view_until(client: Client, flow: str, session: str, done: object) -> SessionView:
    deadline = time.monotonic() + 60
    while True:
        try:
            view = await session_view(client, flow, session)
            if done(view) or time.monotonic() > deadline:  # type: ignore[operator]
                return view
        except Exception:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def test_a_killed_runner_started_again_processes_every_event_once(
    client: Client, tmp_path: Path
) -> None:
    name, session = f"runner-{uuid.uuid4().hex[:8]}", "stream"
    flow, log = tmp_path / "agentflow.toml", tmp_path / "calls.log"
    flow.write_text(FLOW.format(name=name))
    first = _start(client, tmp_path, flow, log, session, EVENTS)
    try:
        deadline = time.monotonic() + 60
        while len(_calls(log)) < 10 and first.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)  # mid-stream: events queued, one maybe in flight
        first.wait(timeout=30)
    finally:
        first.kill()
    done_before = len(_calls(log))
    assert 10 <= done_before < 2 * EVENTS, (tmp_path / "program.log").read_text()

    second = _start(client, tmp_path, flow, log, session, 0)  # serves; emits nothing
    try:
        view = await _view_until(client, name, session,
                                 lambda v: v.counts.completed >= 2 * EVENTS)  # fmt: skip
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    counts = view.counts
    assert (counts.emitted, counts.completed, counts.dead_lettered) == (2 * EVENTS, 2 * EVENTS, 0)
    calls = _calls(log)
    works = [event for agent, event in calls if agent == "work"]
    children = [event for agent, event in calls if agent == "child"]
    assert set(works) == {f"e-{index}" for index in range(EVENTS)}
    assert len(set(children)) == EVENTS and all(c.startswith("e-") for c in children)
    # Only an agent running at the kill may have run twice (an activity is at least once).
    assert len(works) + len(children) - 2 * EVENTS <= 1, calls
