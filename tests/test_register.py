"""``agentflow register``: a flow's bus subscriptions recorded as a deploy step, so that
events published before any worker of the flow has ever started still reach it, once."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from agentflow.client.bus import session_counts
from agentflow.client.bus_registrations import recorded_state
from agentflow.config import load_config
from agentflow.names import session_workflow_id
from agentflow.worker.serve import serving
from tests.conftest import cli
from tests.test_bus_registry_down import FLOW

# The same flow without subscriptions.
QUIET = FLOW.split("subscribes = ")[0]


def lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


async def wait_for_lines(log: Path, count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(60):
        while len(lines(log)) < count:
            await asyncio.sleep(0.05)
    return lines(log)


async def delivered(client: Client, workflow_id: str) -> WorkflowExecutionDescription:
    """The delivery session's description, once the fan-out has started it."""
    async with asyncio.timeout(60):
        while True:
            try:
                return await client.get_workflow_handle(workflow_id).describe()
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
            await asyncio.sleep(0.05)


async def test_events_published_after_register_reach_a_flow_whose_worker_starts_later(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suffix = uuid.uuid4().hex[:6]
    flow, topic, log = f"late-{suffix}", f"late-{suffix}.news", cli_env / "log"
    (cli_env / "late.toml").write_text(FLOW.format(flow=flow, topic=topic))
    (cli_env / "quiet.toml").write_text(QUIET.format(flow=f"quiet-{suffix}"))

    code, out, err = await cli(capsys, "register", "--config", "late.toml",
                               "--config", "quiet.toml")  # fmt: skip
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"registered flow {flow!r}: its deliveries go to task queue 'agentflow:{flow}' (no "
        "worker polls it yet: deliveries wait there until one starts)",
        f"  {topic}  →  {flow}.reader",
        f"flow 'quiet-{suffix}' subscribes to nothing: nothing to register",
    ]
    # Recorded in Temporal at once: the registry's history says so with no worker reading it.
    registered = (await recorded_state(client)).registrations[flow]
    assert registered.task_queue == f"agentflow:{flow}"

    data = json.dumps({"log_file": str(log)})
    argv = ("publish", topic, "--config", "late.toml", "--session", "s1", "--event-id")
    session = session_workflow_id(flow, "bus:reader:s1")
    # Workers of other flows run the bus: the fan-out happens now, before the flow has a
    # worker, and finds the registration (without it, the event would reach no one).
    async with serving(client, [(load_config(cli_env / "quiet.toml"), cli_env)]):
        code, _, err = await cli(capsys, *argv, f"first-{suffix}", "--input", data)
        assert code == 0, err
        waiting = await delivered(client, session)  # the delivery waits in Temporal
    assert waiting.task_queue == f"agentflow:{flow}" and lines(log) == []

    config = load_config(cli_env / "late.toml")
    async with serving(client, [(config, cli_env)]):  # the flow's first worker, ever
        [first] = await wait_for_lines(log, 1)
        # A second event into the same session runs after the first: when it is done, a
        # repeat of the first would have been too.
        code, _, err = await cli(capsys, *argv, f"second-{suffix}", "--input", data)
        assert code == 0, err
        seen = await wait_for_lines(log, 2)
        session = session_workflow_id(flow, "bus:reader:s1")
        # The log line is written inside the agent; the session counts it once the activity
        # has completed, a moment later.
        async with asyncio.timeout(30):
            while (counts := await session_counts(client, session, timeout=10)) is None or (
                counts.processed < 2
            ):
                await asyncio.sleep(0.1)
    assert first["agent"] == "reader" and first["meta"]["parent_event"] == f"first-{suffix}"
    assert [line["meta"]["parent_event"] for line in seen] == [f"first-{suffix}",
                                                               f"second-{suffix}"]  # fmt: skip
    assert counts is not None
    assert (counts.emitted, counts.processed, counts.dead_lettered) == (2, 2, 0)


async def test_register_refuses_bad_input_in_one_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = await cli(capsys, "register", "--config", "missing.toml")
    assert (code, out) == (2, "")
    assert err == "agentflow: error: missing.toml: file not found (pass --config PATH)\n"

    (cli_env / "flow.toml").write_text(FLOW.format(flow="down", topic="down.t"))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port}")
    code, out, err = await cli(capsys, "register", "--config", "flow.toml")
    assert (code, out) == (1, "")
    assert err.startswith(f"agentflow: error: cannot connect to Temporal at 127.0.0.1:{port}")
    assert len(err.splitlines()) == 1
