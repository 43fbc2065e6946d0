"""Event patterns over time windows (``[patterns.NAME]``): sequence, count and absence, each
matched by one workflow per (flow, pattern, key) fed by the bus's fan-out, with windows of
seconds; load errors; ``agentflow patterns``; the bound on a pattern workflow's history; and a
worker killed inside a window."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agentflow.client.bus import client_request, publish
from agentflow.client.bus_patterns import signal_pattern
from agentflow.client.dead_letters import list_letters
from agentflow.client.patterns import open_windows
from agentflow.config import FlowConfig, parse_config
from agentflow.config.patterns import PatternConfig
from agentflow.errors import ConfigError
from agentflow.models.bus import short_id
from agentflow.models.pattern import PatternEvent, PatternState, derived_event_id
from agentflow.names import pattern_workflow_id
from tests._worker_process import WorkerProcess
from tests.conftest import REPO, cli
from tests.pattern_agents import lines
from tests.test_bus_durable import served, unique, until

DERIVED = "tests.pattern_agents:derived"


def pattern_flow(name: str, prefix: str, patterns: dict[str, Any]) -> FlowConfig:
    """A flow whose ``watcher`` logs every derived event of ``prefix``."""
    raw = {
        "agent_flow": {"name": name},
        "orchestration": {"mode": "sequential", "sequential_agents": ["watcher"]},
        "agents": {"watcher": {"handler": DERIVED, "subscribes": [f"{prefix}.derived.>"]}},
        "patterns": patterns,
    }
    return parse_config(raw, base_dir=REPO, check_handlers=True)


def flow_toml(name: str, p: str, patterns: dict[str, Any]) -> str:
    """An agentflow.toml of ``patterns`` whose ``watcher`` logs every derived event."""
    toml = [f'[agent_flow]\nname = "{name}"\n[orchestration]\nmode = "sequential"\n'
            'sequential_agents = ["watcher"]\n[agents.watcher]\n'
            f'handler = "{DERIVED}"\nsubscribes = ["{p}.derived.>"]\n']  # fmt: skip
    for pattern, spec in patterns.items():
        toml.append(f"[patterns.{pattern}]\n" + "".join(
            f"{k} = {json.dumps(v)}\n" for k, v in spec.items()))  # fmt: skip
    return "".join(toml)


def kinds(p: str) -> dict[str, Any]:
    """The three kinds, with windows of seconds; each key's workflow ends 200 ms after its
    last window closed (``linger``), so tests can wait for its result."""
    key = "data.customer_id"
    tables: dict[str, Any] = {
        "seq": {"kind": "sequence", "topics": [f"{p}.cart.created", f"{p}.cart.paid"],
                "within": "4s", "key": key, "publish": f"{p}.derived.seq"},
        "cnt": {"kind": "count", "topic": f"{p}.payment.failed", "count": 3, "within": "4s",
                "key": key, "publish": f"{p}.derived.cnt"},
        "abs": {"kind": "absence", "topics": [f"{p}.order.placed", f"{p}.order.shipped"],
                "within": "3s", "key": key, "publish": f"{p}.derived.abs"},
    }  # fmt: skip
    for table in tables.values():
        table["linger"] = "200ms"
    return tables


async def send(client: Client, config: FlowConfig, topic: str, customer: str | None) -> str:
    data = {} if customer is None else {"customer_id": customer}
    # The key orders a customer's events through one bus shard, as patterns need.
    request = client_request(config, topic, data, identity="test", event_id=unique("ev"),
                             key=customer)  # fmt: skip
    await publish(client, request)
    return request.event_id


async def result(client: Client, flow: str, pattern: str, key: str) -> int:
    handle = client.get_workflow_handle(short_id(pattern_workflow_id(flow, pattern, key)))
    return int(await asyncio.wait_for(handle.result(), 30))


async def test_each_kind_matches_once_and_only_in_its_window(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = unique("p")
    flow = pattern_flow(unique("shop"), p, kinds(p))
    async with served(client, flow):
        # sequence: c1 in order (a match); c2 out of order (none)
        created = await send(client, flow, f"{p}.cart.created", "c1")
        await send(client, flow, f"{p}.cart.paid", "c2")
        paid = await send(client, flow, f"{p}.cart.paid", "c1")
        await send(client, flow, f"{p}.cart.created", "c2")
        # count: three for c1 (a match), two for c2 (none)
        failed = [await send(client, flow, f"{p}.payment.failed", "c1") for _ in range(3)]
        await send(client, flow, f"{p}.payment.failed", "c2")
        await send(client, flow, f"{p}.payment.failed", "c2")
        # absence: c1 never shipped (a match when its window closes); c2 shipped in time
        placed = await send(client, flow, f"{p}.order.placed", "c1")
        await send(client, flow, f"{p}.order.placed", "c2")

        # `agentflow patterns` while c1's absence window is open
        async def c1_open() -> bool:
            views = await open_windows(client, flow.name)
            return any(v.name == "abs" and v.key == "c1" and v.windows for v in views)

        await until(c1_open, 15)
        code, out, _ = await cli(capsys, "patterns", "--json")
        assert code == 0
        rows = [json.loads(line) for line in out.splitlines()]
        mine = {row["pattern"]: row for row in rows if row["flow"] == flow.name}
        assert set(mine) == {"seq", "cnt", "abs"}
        assert mine["abs"]["kind"] == "absence" and mine["abs"]["key"] == "data.customer_id"
        assert placed in [e for w in mine["abs"]["open"] if w["key"] == "c1" for e in w["events"]]
        await send(client, flow, f"{p}.order.shipped", "c2")
        # no customer_id: the key fails; the bus dead-letters the event, naming the pattern
        await send(client, flow, f"{p}.cart.created", None)

        async def three() -> bool:
            return len(lines(flow.name)) >= 3

        await until(three, 30)
        assert await result(client, flow.name, "seq", "c1") == 1
        assert await result(client, flow.name, "seq", "c2") == 0  # out of order
        assert await result(client, flow.name, "cnt", "c1") == 1
        assert await result(client, flow.name, "cnt", "c2") == 0
        assert await result(client, flow.name, "abs", "c1") == 1
        assert await result(client, flow.name, "abs", "c2") == 0  # shipped in time
        code, out, _ = await cli(capsys, "patterns")
        assert f"{flow.name}.abs  absence {p}.order.placed → {p}.order.shipped" in out
        why = f"pattern {flow.name}.seq: key 'data.customer_id' failed"

        async def lettered() -> bool:
            found = [x async for x in list_letters(client, flow="agentflow-bus")
                     if why in (x.error or "")]  # fmt: skip
            return bool(found) and found[0].reason == "expression failed"

        await until(lettered, 15)
    seen = {line["pattern"]: line for line in lines(flow.name)}
    assert len(lines(flow.name)) == 3, lines(flow.name)
    assert seen["seq"]["events"] == [created, paid]
    assert seen["cnt"]["events"] == failed
    assert seen["abs"]["events"] == [placed]
    assert seen["abs"]["publisher"] == f"{flow.name}.patterns.abs"
    assert seen["seq"]["parent_event"] == derived_event_id(flow.name, "seq", "c1", [created, paid])


async def test_a_pattern_workflow_continues_as_new_with_its_window(client: Client) -> None:
    """A burst into one key: the run continues as new every ``events_per_run`` events,
    carrying its open window, so no run's history grows with the burst."""
    p = unique("burst")
    pattern = PatternConfig.model_validate(
        {
            "kind": "count",
            "topic": f"{p}.hit",
            "count": 10_000,
            "within": 60.0,
            "key": "data.k",
            "publish": f"{p}.derived.burst",
        }
    )
    flow = pattern_flow(unique("burst"), p, {})
    state = PatternState(flow=flow.name, name="burst", key="k", config=pattern, events_per_run=20)
    workflow_id = short_id(pattern_workflow_id(flow.name, "burst", "k"))
    async with served(client, flow):
        now = datetime.now(timezone.utc)
        events = [PatternEvent(id=f"{p}-{n}", topic=f"{p}.hit", at=now) for n in range(70)]
        for event in events:
            await signal_pattern(client, flow.name, "burst", pattern, "k", event, state)
        await signal_pattern(client, flow.name, "burst", pattern, "k", events[5], state)  # again

        async def all_in_window() -> bool:
            views = await open_windows(client, flow.name)
            return bool(views) and len(views[0].windows[0].ids) == 70

        await until(all_in_window, 30)
        runs = [run async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
        assert len(runs) >= 3, len(runs)  # 70 events, 20 a run
        for run in runs:
            history = await client.get_workflow_handle(
                workflow_id, run_id=run.run_id
            ).fetch_history()
            assert len(history.events) < 120, len(history.events)
        await client.get_workflow_handle(workflow_id).terminate("test over")


def test_bad_patterns_are_one_line_each(tmp_path: Path) -> None:
    good = kinds("t")
    cases = {
        "unknown key": ({**good["seq"], "extra": 1}, "patterns.x.extra: unknown key"),
        "unknown kind": ({**good["seq"], "kind": "seq"}, "patterns.x.kind: Input should be"),
        "zero window": ({**good["seq"], "within": "0s"}, "patterns.x.within: Input should be "
                        "greater than 0"),
        "window too long": ({**good["seq"], "within": 1e12}, "patterns.x.within: Input should "
                            "be at most"),
        "key not a string": ({**good["seq"], "key": 3}, "patterns.x.key: Input should be a valid "
                             "string"),
        "key does not compile": ({**good["seq"], "key": "data.x >"}, "patterns.x.key: CEL "
                                 "syntax error"),
        "unknown variable": ({**good["seq"], "key": "customer"}, "patterns.x.key: CEL "
                             "expression 'customer' uses unknown variable 'customer'"),
        "count below 2": ({**good["cnt"], "count": 1}, "patterns.x.count: Input should be "
                          "greater than or equal to 2"),
        "one sequence topic": ({**good["seq"], "topics": ["t.a"]}, "takes two or more topics"),
        "three absence topics": ({**good["abs"], "topics": ["a", "b", "c"]}, "exactly two"),
    }  # fmt: skip
    for what, (table, message) in cases.items():
        raw = {"agent_flow": {"name": "f"}, "orchestration": {"mode": "sequential",
               "sequential_agents": ["a"]}, "agents": {"a": {"handler": DERIVED}},
               "patterns": {"x": table}}  # fmt: skip
        with pytest.raises(ConfigError) as caught:
            parse_config(raw, base_dir=REPO, check_handlers=True)
        assert message in str(caught.value), (what, str(caught.value))
        assert len(str(caught.value).splitlines()) == 1, what


async def test_a_worker_killed_inside_a_window_loses_no_window_and_no_match(
    client: Client, tmp_path: Path
) -> None:
    """SIGKILL the worker with a sequence half matched and an absence window open; the
    second event is published while no worker runs, and the absence's timer fires then. A new
    worker publishes each match once."""
    p = unique("crash")
    name = unique("crash")
    patterns = kinds(p)
    patterns["seq"]["within"] = "30s"
    table = {"seq": patterns["seq"], "abs": patterns["abs"]}
    config = pattern_flow(name, p, table)  # the same flow, for the client's publishes
    (flow_file := tmp_path / "agentflow.toml").write_text(flow_toml(name, p, table))
    address = client.service_client.config.target_host
    worker = WorkerProcess(flow_file, unique("q"), address, tmp_path / "worker.log").start()
    try:
        created = await send(client, config, f"{p}.cart.created", "c1")
        placed = await send(client, config, f"{p}.order.placed", "c1")

        async def both_open() -> bool:
            return len([v for v in await open_windows(client, name) if v.windows]) == 2

        await until(both_open, 20)
        worker.kill()
        paid = await send(client, config, f"{p}.cart.paid", "c1")  # recorded, not fanned out
        absence = client.get_workflow_handle(short_id(pattern_workflow_id(name, "abs", "c1")))

        async def timer_fired() -> bool:
            history = await absence.fetch_history()
            return any(e.event_type == EventType.EVENT_TYPE_TIMER_FIRED for e in history.events)

        await until(timer_fired, 20)  # the window closed while no worker ran
        worker.start()

        async def two() -> bool:
            return len(lines(name)) >= 2

        await until(two, 40)
        assert await result(client, name, "seq", "c1") == 1
        assert await result(client, name, "abs", "c1") == 1
    finally:
        worker.kill()
    seen = {line["pattern"]: line["events"] for line in lines(name)}
    assert len(lines(name)) == 2, lines(name)
    assert seen == {"seq": [created, paid], "abs": [placed]}
