"""Batched subscribers (``batch = { max_events, max_wait }``, docs/bus.md "Batched
subscribers"): the agent gets its bus deliveries in batches, one call each, in order; a
partial batch goes out after ``max_wait``; each batch goes out once the one before has its
outcome; a SIGKILLed worker loses and repeats no event; a batch that fails for good, or that
its session refuses, dead-letters each of its events."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from agentflow.client.batches import add_to_batch, batch_session
from agentflow.client.bus import client_request, forget, publish
from agentflow.client.dead_letters import list_letters
from agentflow.config import FlowConfig, load_config, parse_config
from agentflow.config.code_checks import unrunnable
from agentflow.errors import ConfigError
from agentflow.models.bus import subscribers_of
from agentflow.models.flow import Event
from agentflow.names import BATCH_DELIVER_ACTIVITY, batcher_workflow_id
from agentflow.worker.plugin import ALL_WORKFLOWS
from tests._worker_process import WorkerProcess
from tests.batcher_goldens import BATCHER_GOLDENS, BATCHER_HISTORIES
from tests.conftest import REPO, cli
from tests.test_bus_durable import served, unique, until

BATCH = "tests.batch_agents:log_batch"


def batch_flow(name: str, topic: str, batch: Any) -> FlowConfig:
    """A route flow of one batched subscriber, ``taker``."""
    raw = {
        "agent_flow": {"name": name},
        "orchestration": {"mode": "route", "retry": {"initial_interval_seconds": 0.05}},
        "agents": {"taker": {"handler": BATCH, "subscribes": [topic], "batch": batch,
                             "retry_attempts": 1}},
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


def batches(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def numbers(log: Path) -> list[int]:
    """The events' numbers over the distinct batches, in the order the batches completed
    (a batch call repeated by a crash has the same id and events: counted once)."""
    firsts: dict[str, list[int]] = {}
    for line in batches(log):
        assert firsts.setdefault(line["batch"], line["ns"]) == line["ns"], line
    return [n for ns in firsts.values() for n in ns]


async def publish_all(client: Client, config: FlowConfig, topic: str, items: list[dict[str, Any]],
                      run: str) -> None:  # fmt: skip
    """One after another, with one key: the bus keeps a key's events in publish order."""
    for item in items:
        request = client_request(config, topic, item, identity="batch-test", key=run,
                                 event_id=f"{run}-{item['n']}")  # fmt: skip
        await publish(client, request)


@pytest.mark.parametrize("name", BATCHER_GOLDENS)
async def test_batcher_golden_histories_replay(name: str) -> None:
    path = BATCHER_HISTORIES / f"{name.split('/')[-1]}.json"
    history = WorkflowHistory.from_json(f"golden-{name}", json.loads(path.read_text()))
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    assert (await replayer.replay_workflow(history)).replay_failure is None


async def test_bad_batch_tables_are_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "{ max_events = 10, size = 3 }": "unknown key; allowed keys: max_events, max_wait",
        "{ max_events = 0 }": "greater than or equal to 1",
        "{ max_events = 1001 }": "less than or equal to 1000",
        '{ max_wait = "0s" }': "greater than 0",
        '{ max_wait = "soon" }': "is not a duration",
        '{ max_wait = "100000000h" }': "at most",
    }
    for table, message in bad.items():
        flow = tmp_path / "agentflow.toml"
        flow.write_text(f'[agent_flow]\nname = "f"\n[orchestration]\nmode = "route"\n'
                        f'[agents.a]\nhandler = "{BATCH}"\nsubscribes = ["t"]\n'
                        f"batch = {table}\n")  # fmt: skip
        code, _, out = await cli(capsys, "validate", "--config", str(flow))
        assert code == 2, (table, out)
        assert "agents.a.batch" in out and message in out, (table, out)
        assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out
    with pytest.raises(ConfigError, match="batch gathers bus deliveries: give the agent subscr"):
        parse_config({"agent_flow": {"name": "f"}, "orchestration": {"mode": "route"},
                      "agents": {"a": {"handler": BATCH, "batch": {}}}})  # fmt: skip


async def test_250_events_arrive_in_order_in_batches_of_at_most_100(
    client: Client, tmp_path: Path
) -> None:
    run, topic, log = uuid.uuid4().hex[:8], unique("batched") + ".ev", tmp_path / "log"
    config = batch_flow(unique("batch"), topic, {"max_events": 100, "max_wait": "2s"})
    async with served(client, config):
        items = [{"n": n, "log_file": str(log)} for n in range(250)]
        await publish_all(client, config, topic, items, run)

        async def all_in() -> bool:
            return len(numbers(log)) >= 250

        await until(all_in)
        await forget(client, config.name)
    sizes = [len(line["ns"]) for line in batches(log)]
    assert numbers(log) == list(range(250))  # each once, in publish order
    assert all(size <= 100 for size in sizes), sizes
    # 250 is no multiple of 100: some batch went out partial, after max_wait.
    assert any(size < 100 for size in sizes), sizes


async def test_a_failing_batch_dead_letters_each_of_its_events(
    client: Client, tmp_path: Path
) -> None:
    run, topic, log = uuid.uuid4().hex[:8], unique("batched") + ".ev", tmp_path / "log"
    config = batch_flow(unique("batch"), topic, {"max_events": 3, "max_wait": "30s"})
    async with served(client, config):
        items = [{"n": n, "log_file": str(log), "fail": n == 1} for n in range(3)]
        await publish_all(client, config, topic, items, run)

        async def lettered() -> list[Any]:
            return [x async for x in list_letters(client, flow=config.name)]

        async def three() -> bool:
            return len(await lettered()) >= 3

        await until(three)
        letters = await lettered()
        await forget(client, config.name)
    assert not batches(log)
    assert sorted(x.event_id or "" for x in letters) == [
        f"{run}-{n}@{config.name}.taker" for n in range(3)
    ], letters
    for letter in letters:
        assert letter.reason == "agent failed", letter
        assert "batch batch-" in (letter.error or "") and "of 3 events failed" in (
            letter.error or ""
        ), letter


async def letters_of(client: Client, flow: str) -> list[Any]:
    return [x async for x in list_letters(client, flow=flow)]


async def sends(client: Client, flow: str) -> tuple[list[EventType.ValueType], list[str]]:
    """The batcher's ``batch_deliver`` events in order (scheduled, completed), and what each
    completed one returned."""
    history = await client.get_workflow_handle(batcher_workflow_id(flow, "taker")).fetch_history()
    kinds, results = [], []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            assert attributes.activity_type.name == BATCH_DELIVER_ACTIVITY
            kinds.append(event.event_type)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            kinds.append(event.event_type)
            payloads = event.activity_task_completed_event_attributes.result.payloads
            results += await client.data_converter.decode(list(payloads), [str])
    return kinds, results


async def test_each_batch_goes_out_once_the_one_before_has_its_outcome(
    client: Client, tmp_path: Path
) -> None:
    run, topic, log = uuid.uuid4().hex[:8], unique("batched") + ".ev", tmp_path / "log"
    config = batch_flow(unique("batch"), topic, {"max_events": 2, "max_wait": "200ms"})
    async with served(client, config):
        items = [{"n": n, "log_file": str(log), "sleep": 0.3, "fail": n == 3} for n in range(6)]
        await publish_all(client, config, topic, items, run)

        async def settled() -> bool:
            return len(numbers(log)) + len(await letters_of(client, config.name)) >= 6

        await until(settled)
        letters = await letters_of(client, config.name)
        kinds, results = await sends(client, config.name)
        await forget(client, config.name)
    lettered = sorted(int((x.event_id or "").split("@")[0].rsplit("-", 1)[1]) for x in letters)
    assert 3 in lettered and sorted(numbers(log) + lettered) == list(range(6)), (log, letters)
    assert numbers(log) == sorted(numbers(log))
    for letter in letters:  # the failed batch: a letter per event, saying which batch failed
        assert letter.reason == "agent failed" and "batch batch-" in (letter.error or ""), letter
    # One send at a time, each returning with its batch's outcome in the session: the next
    # batch goes out only after the one before was processed (or dead-lettered).
    scheduled, completed = (EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
                            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)  # fmt: skip
    assert kinds == [scheduled, completed] * len(results), kinds
    outcomes = [result.rsplit(" ", 1)[-1] for result in results]
    assert outcomes.count("dead_lettered") == 1, results
    assert outcomes.count("completed") == len(results) - 1, results


async def test_a_batch_its_session_refuses_dead_letters_each_of_its_events(
    client: Client, tmp_path: Path
) -> None:
    """``batch_deliver`` failing for good (its session refuses the batch, a ConfigError, so
    retrying cannot help): the batcher writes a letter per event and goes on."""
    run, topic, log = uuid.uuid4().hex[:8], unique("batched") + ".ev", tmp_path / "log"
    config = batch_flow(unique("batch"), topic, {"max_events": 3, "max_wait": "30s"})
    taker = config.agents["taker"]
    assert taker.batch is not None
    # A route flow with its only agent off: no session takes an event of it (emit refuses).
    refused = config.model_copy(update={"agents": {"taker": taker.model_copy(
        update={"enabled": False})}})  # fmt: skip
    assert unrunnable(refused) is not None
    async with served(client, config) as queue:
        sub = subscribers_of(config, queue)[0]
        for n in range(3):
            event = Event(id=f"{run}-{n}", session_id=batch_session(sub),
                          data={"n": n, "log_file": str(log)})  # fmt: skip
            await add_to_batch(client, refused, sub, taker.batch, event)

        async def three() -> bool:
            return len(await letters_of(client, config.name)) >= 3

        await until(three)
        letters = await letters_of(client, config.name)
        kinds, results = await sends(client, config.name)
        await forget(client, config.name)
    assert not batches(log) and not results  # nothing ran, the send never completed
    assert kinds == [EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED], kinds
    assert sorted(x.event_id or "" for x in letters) == [f"{run}-{n}" for n in range(3)]
    for letter in letters:
        error = letter.error or ""
        assert letter.reason == "agent failed", letter
        assert "of 3 events failed: its session refused it" in error, letter
        assert "route mode and no agent to route to" in error, letter


async def test_a_batch_too_large_for_its_session_goes_out_in_smaller_ones(
    client: Client, tmp_path: Path
) -> None:
    run, topic, log = uuid.uuid4().hex[:8], unique("batched") + ".ev", tmp_path / "log"
    config = batch_flow(unique("batch"), topic, {"max_events": 4, "max_wait": "1s"})
    async with served(client, config):
        big = "x" * 200_000  # four of them: over a batch's 512 KB, two within it
        items = [{"n": n, "log_file": str(log), "big": big} for n in range(4)]
        await publish_all(client, config, topic, items, run)

        async def all_in() -> bool:
            return len(numbers(log)) >= 4

        await until(all_in)
        await forget(client, config.name)
    assert numbers(log) == [0, 1, 2, 3]
    assert all(len(line["ns"]) <= 2 for line in batches(log)), batches(log)


FLOW = """
[agent_flow]
name = "{flow}"

[orchestration]
mode = "route"
workflow_task_timeout_seconds = 2   # a dead worker's workflows move on after 2 s

[orchestration.retry]
initial_interval_seconds = 0.1

[agents.taker]
handler = "{handler}"
timeout_seconds = 3                 # a dead worker's call is retried after 3 s
subscribes = ["{topic}"]
batch = {{ max_events = 20, max_wait = "1s" }}
"""


async def test_a_killed_worker_loses_and_repeats_no_event_of_a_batch(
    client: Client, tmp_path: Path
) -> None:
    run, topic, log = uuid.uuid4().hex[:8], unique("crash") + ".ev", tmp_path / "log"
    path = tmp_path / "flow.toml"
    flow = f"batch-crash-{run}"
    path.write_text(FLOW.format(flow=flow, handler=BATCH, topic=topic))
    config = load_config(path)
    address = client.service_client.config.target_host
    worker = WorkerProcess(path, f"{flow}-q", address, tmp_path / "worker.log")
    total = 200
    items = [{"n": n, "log_file": str(log), "sleep": 0.05} for n in range(total)]
    try:
        first = (await asyncio.to_thread(worker.start)).process
        assert first is not None
        await publish_all(client, config, topic, items[:80], run)

        async def some() -> bool:
            return len(batches(log)) >= 1

        await until(some)
        worker.kill()
        await publish_all(client, config, topic, items[80:], run)
        second = (await asyncio.to_thread(worker.start)).process
        assert second is not None

        async def all_in() -> bool:
            return len(set(numbers(log))) >= total

        await until(all_in, timeout=90)
        await forget(client, config.name)
    finally:
        await asyncio.to_thread(worker.stop)
    assert numbers(log) == list(range(total))  # each once, in order, across the kill
    assert {line["pid"] for line in batches(log)} == {first.pid, second.pid}
    assert all(len(line["ns"]) <= 20 for line in batches(log))
