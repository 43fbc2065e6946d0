"""``emit`` without ``wait`` names the event's config by key (the ``emit_by_key`` signal) once
this process has sent the session the config: the first signal carries it, later ones only
its key, across continue-as-new (a run hands on its recent configs). A run that lacks the key
all the same dead-letters the event ("config unknown"), and a redrive, which sends the config,
processes it. An emit refused while the session's run closes is sent again. A run also
continues as new once its history passes RUN_HISTORY_BYTES. Also: the golden histories of
both paths replay, and so does every run recorded before them (tests/test_replay.py).
``python -m tests.test_session_keyed_signals`` records the goldens.
"""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig, RPCError, RPCStatusCode

from agentflow.client import dead_letters
from agentflow.client.runner import Runner
from agentflow.client.sessions import retry_while_closing, session_view
from agentflow.config import FlowConfig
from agentflow.inspect.trace.read import run_histories, trace_chain
from agentflow.models.flow import Event
from agentflow.models.session import (
    EmitByKey,
    EventOutcome,
    config_key,
    config_key_of,
    received_config_key,
)
from agentflow.names import EMIT_BY_KEY_SIGNAL, EMIT_SIGNAL, session_workflow_id
from agentflow.workflows._session_handover import RUN_HISTORY_BYTES
from tests.conftest import flow_config, running_worker
from tests.test_session_keyed import chain_inputs, recording_server, replay_failure

HISTORIES = Path(__file__).parent / "histories" / "sessions"
# The first run of each: signals by key (and a continue-as-new handing configs on), and a
# run that continued as new on its history's size.
GOLDENS = (HISTORIES / "keyed_signals.json", HISTORIES / "history_bytes.json")
AGENTS = ["a", "b"]


def _config(version: str = "1.0") -> FlowConfig:
    config = flow_config("sequential", dict.fromkeys(AGENTS, "tests.agents:noop"),
                         sequential_agents=AGENTS, local_agents=True,
                         tables={"sessions": {"events_per_run": 3}})  # fmt: skip
    config.agent_flow.version = version
    return config


def _signal(event: HistoryEvent) -> tuple[str, Payload] | None:
    if not event.HasField("workflow_execution_signaled_event_attributes"):
        return None
    signal = event.workflow_execution_signaled_event_attributes
    return signal.signal_name, signal.input.payloads[0]


async def _signals(client: Client, workflow_id: str) -> list[tuple[str, dict[str, object]]]:
    """Each emit signal of the session's runs, in order: its name and its input as JSON."""
    return await chain_inputs(client, workflow_id, _signal)


async def _emit_signals(client: Client, session: str) -> str:
    """Seven signals into one session: two configs, a continue-as-new after every 3 events,
    a repeat. Every event completes once. The session's workflow id."""
    first, second = _config("1.0"), _config("1.1")
    async with running_worker(client, first) as queue:  # the agents are the same
        runner, changed = Runner(first, client, queue), Runner(second, client, queue)
        handles = []
        for n, who in enumerate([runner, runner, changed, runner, changed, runner]):
            handles.append(await who.emit({"n": n}, session_id=session, event_id=f"s{n}"))
        await runner.emit({"n": 0}, session_id=session, event_id="s0")  # a repeat, by key
        assert [(await h.outcome()).status for h in handles] == ["completed"] * 6
        view = await session_view(client, first.name, session)
    assert (view.counts.emitted, view.counts.completed, view.counts.duplicates) == (6, 6, 1)
    assert view.runs >= 2  # it continued as new, and the next runs still knew both keys
    return session_workflow_id(first.name, session)


async def test_signals_carry_the_config_once_then_its_key(client: Client) -> None:
    workflow_id = await _emit_signals(client, f"signals-{uuid.uuid4().hex[:6]}")
    signals = await _signals(client, workflow_id)
    full, by_key = EMIT_SIGNAL, EMIT_BY_KEY_SIGNAL
    # The first signal of each config carries it; every later one (after continue-as-new
    # too, and the repeat) names it by key.
    assert [name for name, _ in signals] == [full, by_key, full, by_key, by_key, by_key, by_key]
    keys = {version: config_key(_config(version)) for version in ("1.0", "1.1")}
    named = [request["config_key"] for name, request in signals if name == by_key]
    assert named == [keys["1.0"], keys["1.0"], keys["1.1"], keys["1.0"], keys["1.0"]]
    for name, request in signals:
        assert ("config" in request) == (name == full)


async def test_an_event_whose_config_the_run_lacks_is_dead_lettered_then_redriven(
    client: Client,
) -> None:
    config, session = _config(), f"lacks-{uuid.uuid4().hex[:6]}"
    workflow_id = session_workflow_id(config.name, session)
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        await (await runner.emit({"n": 0}, session_id=session, event_id="x0")).outcome()
        # What a client sends to a run that no longer has its config (a reset run, say).
        stray = EmitByKey(config_key="0" * 16, event=Event(id="x1", session_id=session))
        await client.get_workflow_handle(workflow_id).signal(EMIT_BY_KEY_SIGNAL, stray)
        letter_id = f"{config.name}:dead-letter:{session}:x1"
        record = await _open_letter(client, letter_id)
        letter = record.view.letter
        assert letter is not None and letter.reason == "config unknown"
        assert "0" * 16 in (letter.error or "") and "redrive" in (letter.error or "")
        decision = await dead_letters.redrive(client, config, letter_id, by="test")
        assert decision.outcome == "redriven"
        handle = await runner.emit({}, session_id=session, event_id="x2", wait=True)
        assert (await handle.outcome()).status == "completed"
        view = await session_view(client, config.name, session)
    # x0, x1 (dead-lettered), x1.r1 (its redrive, with the config), x2.
    assert (view.counts.emitted, view.counts.completed, view.counts.dead_lettered) == (4, 3, 1)
    lines = await trace_chain(client, workflow_id)
    assert any("config is unknown to this run" in line.detail for line in lines)


async def _open_letter(client: Client, letter_id: str) -> dead_letters.LetterRecord:
    async with asyncio.timeout(30):
        while True:
            try:
                return await dead_letters.read_letter(client, letter_id)
            except Exception:  # not started yet: the session writes it in its next task
                await asyncio.sleep(0.1)


async def _big_events(client: Client, session: str) -> list[int]:
    """80 events of 8 KB, one at a time, into a session whose runs take 200 events: the
    history bound (RUN_HISTORY_BYTES, after RUN_MIN_EVENTS) ends runs first. Each run's
    history size in bytes."""
    config = _config()
    config.sessions.events_per_run = 200
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        for n in range(80):
            handle = await runner.emit({"n": n, "pad": "x" * 8_000}, session_id=session,
                                       event_id=f"b{n}", wait=True)  # fmt: skip
            assert (await handle.outcome()).status == "completed"
        view = await session_view(client, config.name, session)
    assert view.counts.completed == 80
    workflow_id = session_workflow_id(config.name, session)
    return [sum(event.ByteSize() for event in events)
            async for _, events in run_histories(client, workflow_id)]  # fmt: skip


async def test_a_run_continues_as_new_once_its_history_is_large(client: Client) -> None:
    sizes = await _big_events(client, f"big-{uuid.uuid4().hex[:6]}")
    # 80 events of 8 KB (about 55 KB of history each: the Update, the agents' inputs and
    # outputs) would make one run of some 4 MB. The bound ends a run at an event boundary
    # once it has processed RUN_MIN_EVENTS and the size it last saw (as of its workflow
    # task's start) passed RUN_HISTORY_BYTES: a few events over it.
    per_event = sum(sizes) / 80
    assert len(sizes) >= 3, sizes
    assert all(size < RUN_HISTORY_BYTES + 10 * per_event for size in sizes), (sizes, per_event)


# Recorded by a sender whose agents had no `stream` key yet: read by today's code, its configs
# have it unset, and the keys the session files them under must still be the sender's.
OLDER_CONFIG = HISTORIES / "keyed_signals_older_config.json"


def test_a_received_config_keeps_its_senders_key_after_a_field_was_added() -> None:
    config = _config()
    sent = json.loads(config.model_dump_json())
    for agent in sent["agents"].values():
        del agent["stream"]  # as a sender from before the field sent it
    data = json.dumps(sent, separators=(",", ":")).encode()
    received = FlowConfig.model_validate_json(data)
    assert received_config_key(received) == config_key_of(data) != config_key(received)
    assert received_config_key(config) != config_key(config)  # a parsed config: use config_key
    assert received_config_key(FlowConfig.model_validate_json(config.model_dump_json())) == (
        config_key(config)
    )


@pytest.mark.parametrize("golden", [*GOLDENS, OLDER_CONFIG], ids=lambda path: path.stem)
async def test_golden_histories_replay(golden: Path) -> None:
    assert await replay_failure(golden) is None


async def _record() -> None:
    async with await recording_server() as env:
        for golden, emitted in zip(GOLDENS, [_emit_signals, _big_events], strict=True):
            await emitted(env.client, golden.stem)
            config = _config()
            workflow_id = session_workflow_id(config.name, golden.stem)
            handle = env.client.get_workflow_handle(workflow_id)
            info = (await handle.describe()).raw_description.workflow_execution_info
            first = env.client.get_workflow_handle(workflow_id, run_id=info.first_run_id)
            history = await first.fetch_history()
            golden.write_text(history.to_json())
            print(f"recorded {golden}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(_record())


async def test_an_emit_refused_while_its_session_closes_is_sent_again() -> None:
    """A run continuing as new under a stream of events refuses them for a moment
    (ResourceExhausted, "workflow is closing"): the emit is sent again; other errors are not."""
    tries: list[str] = []

    async def send(errors: list[RPCError]) -> EventOutcome | None:
        tries.append("try")
        if errors:
            raise errors.pop(0)
        return None

    closing = "workflow operation can not be applied because workflow is closing"
    exhausted = [RPCError(closing, RPCStatusCode.RESOURCE_EXHAUSTED, b"") for _ in range(2)]
    assert await retry_while_closing(lambda: send(exhausted)) is None
    assert len(tries) == 3
    other = [RPCError("busy", RPCStatusCode.RESOURCE_EXHAUSTED, b"")]
    with pytest.raises(RPCError, match="busy"):
        await retry_while_closing(lambda: send(other))
    assert len(tries) == 4


async def test_a_failed_emit_leaves_no_unread_error_behind() -> None:
    """``emit(..., wait=True)`` to a server that went away raises its RPCError, and the
    start operation's copy of that error is read, not logged by asyncio when freed."""
    unread: list[str] = []
    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: unread.append(str(context.get("message"))))
    try:
        async with await recording_server() as env:
            target = env.client.service_client.config.target_host
            client = await Client.connect(target, data_converter=pydantic_data_converter,
                                          retry_config=RetryConfig(max_retries=0))  # fmt: skip
        config = _config()  # the server is gone now
        with pytest.raises(RPCError):
            await Runner(config, client, "nowhere").emit({}, session_id="gone", wait=True)
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(handler)
    assert not [line for line in unread if "never retrieved" in line], unread
