"""Events emitted from inside handlers and callbacks, against a real dev server: chaining,
broadcast, an ``agent_error`` callback that emits a retry event, exactly once across a
retried attempt, another session with metadata keys, bad input, and the session trace that
shows each child under its parent. One worker serves every test of this file."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from agentflow.activities.emit import broadcast, emit
from agentflow.client.dead_letters import read_letter
from agentflow.client.outcomes import event_outcome
from agentflow.client.runner import Runner
from agentflow.client.sessions import session_view
from agentflow.errors import ConfigError
from agentflow.inspect.trace.read import TraceEntry, format_table, trace
from agentflow.models.session import EventOutcome, SessionView
from agentflow.names import session_workflow_id
from tests.conftest import flow_config, running_worker

AGENTS = "chain fan record other flaky fails bad_target elsewhere".split()


@pytest.fixture(scope="module")
async def runner(env: WorkflowEnvironment) -> AsyncIterator[Runner]:
    config = flow_config(
        "route", {name: f"tests.emit_agents:{name}" for name in AGENTS}, retry_attempts=1,
        tables={"hooks": {"agent_error": ["tests.emit_agents:retry_on_error"]}},
    )  # fmt: skip
    async with running_worker(env.client, config) as queue:
        yield Runner(config, env.client, queue)


def _session() -> str:
    return f"emit-{uuid.uuid4().hex[:10]}"


async def _outcome(runner: Runner, session: str, event_id: str) -> EventOutcome:
    workflow_id = session_workflow_id(runner.config.name, session)
    return await event_outcome(runner._client or await runner.client(), workflow_id, event_id)


async def _view_when(
    client: Client, runner: Runner, session: str, done: Callable[[SessionView], bool]
) -> SessionView:
    deadline = time.monotonic() + 20
    while True:
        view = await session_view(client, runner.config.name, session)
        if done(view) or time.monotonic() > deadline:
            return view
        await asyncio.sleep(0.05)


async def _trace_when(
    client: Client, session: str, done: Callable[[list[TraceEntry]], bool]
) -> list[TraceEntry]:
    deadline = time.monotonic() + 20
    while True:
        entries = await trace(client, session=session)
        if done(entries) or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(0.1)


async def test_chaining_and_broadcast_from_sync_and_async_handlers(
    runner: Runner, client: Client
) -> None:
    session = _session()
    chained = await (await runner.emit({"n": 1}, session_id=session, target="chain")).result()
    [child] = chained.state.data["children"]
    fanned = await (await runner.emit({}, session_id=session, target="fan")).result()
    to_record, to_other = fanned.state.data["children"]
    parent = (await _outcome(runner, session, child)).result
    assert parent is not None and parent.status == "completed"
    got = parent.state.data
    assert (got["from"], got["n"], got["source"]) == ("chain", 2, "chain")
    assert child.startswith(got["parent"] + "~chain-") and child.endswith(".1")
    assert to_record.endswith(".1") and to_other.endswith(".2")  # one caller, numbered in order
    for event_id in (to_record, to_other):
        assert (await _outcome(runner, session, event_id)).status == "completed"
    view = await session_view(client, runner.config.name, session)
    assert view.context["runs"] == {"chain": 1, "record": 2, "fan": 1, "other": 1}
    assert view.counts.emitted == 5 and view.counts.duplicates == 0

    # The session's trace: each child's lines one level under its parent's.
    entries = await _trace_when(client, session, lambda found: any(
        e.event_id == to_other and e.action == "completed" and e.agent for e in found))  # fmt: skip
    emitted = {e.event_id: e for e in entries if e.action == "emitted"}
    assert emitted[child].parent_event_id == got["parent"]
    assert f"child of {got['parent']} from chain" in emitted[child].detail
    depth = {e.event_id: e.depth for e in entries if e.event_id}
    assert depth[got["parent"]] == 0 and depth[child] == depth[to_record] == 1
    # The table: a child's EVENT is what its id adds to its parent's; its AGENT is indented.
    label = child.removeprefix(got["parent"])  # "~chain-1a2b3c4d.1", cut to tell them apart
    rows = format_table(entries).splitlines()[1:]
    [started] = [row for row in rows if row.split()[2:5] == [label[:15], "record", "started"]]
    assert "    record   started" in started  # indented one level under its parent


async def test_a_retried_attempt_emits_no_duplicate(runner: Runner, client: Client) -> None:
    session = _session()
    result = await (await runner.emit({}, session_id=session, target="flaky")).result()
    assert result.results[0].attempt == 2  # the first attempt emitted, then failed
    [child] = result.state.data["children"]
    assert (await _outcome(runner, session, child)).status == "completed"
    view = await session_view(client, runner.config.name, session)
    assert view.counts.duplicates == 1  # the retry's emit, dropped by the session
    assert view.context["runs"] == {"flaky": 1, "record": 1}


async def test_an_agent_error_callback_emits_a_retry_event(runner: Runner, client: Client) -> None:
    session = _session()
    failed = await (await runner.emit({"job": 7}, session_id=session, target="fails")).outcome()
    assert failed.status == "dead_lettered"  # both attempts failed; the callback ran twice
    view = await _view_when(client, runner, session, lambda v: v.counts.completed == 1)
    assert view.context["runs"] == {"fails": 1}  # the retry event, processed once
    assert (view.counts.emitted, view.counts.duplicates) == (2, 1)
    entries = await _trace_when(client, session, lambda found: any(
        e.action == "completed" and e.agent == "fails" for e in found))  # fmt: skip
    retry, again = [e for e in entries if e.action == "emitted" and e.parent_event_id]
    assert retry.event_id == again.event_id and retry.parent_event_id == failed.event_id
    assert retry.event_id.startswith(f"{failed.event_id}~retry_on_error-")
    assert "target fails" in retry.detail and "from fails" in retry.detail
    assert again.detail.endswith("duplicate: this session has it already, not processed again")


async def test_emit_into_another_session_with_metadata(runner: Runner, client: Client) -> None:
    session, other = _session(), _session()
    result = await (
        await runner.emit({"session": other}, session_id=session, target="elsewhere")
    ).result()
    [child] = result.state.data["children"]
    assert (await _outcome(runner, other, child)).status == "completed"
    entries = await _trace_when(client, other, lambda found: any(
        e.action == "emitted" for e in found))  # fmt: skip
    [line] = [e for e in entries if e.action == "emitted"]
    assert line.event_id == child and line.depth == 0  # its parent is in another session
    assert line.detail.startswith("priority high, deadline ")
    parent = child.rsplit("~", 1)[0]
    assert line.detail.endswith(f"target record, child of {parent} from elsewhere")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"to": "nope"}, "agent 'bad_target': emit: target: no enabled agent 'nope'; enabled"),
        ({"to": "record", "session": "s" * 300}, "agent 'bad_target': emit: session: 300 bytes;"
         " at most 256"),
    ],
)  # fmt: skip
async def test_bad_emits_fail_the_agent_once(
    runner: Runner, client: Client, data: dict[str, Any], message: str
) -> None:
    outcome = await (await runner.emit(data, target="bad_target")).outcome()
    assert outcome.status == "dead_lettered" and outcome.error and outcome.dead_letter_id
    assert message in outcome.error
    letter = (await read_letter(client, outcome.dead_letter_id)).view.letter
    assert (letter.failed_agent, letter.error_type, letter.attempts) == (
        "bad_target", "FatalError", 1)  # not retried  # fmt: skip


def test_emit_outside_a_handler_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"^emit: only inside an agent's handler or a \[hooks\]"):
        emit("record", {})
    with pytest.raises(ConfigError, match="only inside"):
        broadcast(["record"], {})
