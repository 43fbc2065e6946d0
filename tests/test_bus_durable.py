"""The durable bus across flows and workers: publish, fan-out to subscribers of other flows
(served on their own task queues), patterns, dedupe, ordering, access control, chains."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow.client.bus import client_request, publish, registrations
from agentflow.client.dead_letters import list_letters
from agentflow.config import FlowConfig, parse_config
from agentflow.config.topics import matches, pattern_problem, topic_problem
from agentflow.errors import ConfigError
from agentflow.models.bus import Registration
from agentflow.worker.serve import serving
from tests.conftest import REPO, cli

BUS = "tests.agents:bus_agent"


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def bus_flow(
    name: str, agents: dict[str, Any], orchestration_extra: dict[str, Any] | None = None,
    **tables: Any,
) -> FlowConfig:  # fmt: skip
    """A sequential flow of the first agent; the others only subscribe."""
    agent_tables = {a: {"handler": BUS, **table} for a, table in agents.items()}
    raw = {
        "agent_flow": {"name": name},
        "orchestration": {"mode": "sequential", "sequential_agents": [next(iter(agents))],
                          "retry": {"initial_interval_seconds": 0.05},
                          **(orchestration_extra or {})},
        "agents": agent_tables, **tables,
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


@contextlib.asynccontextmanager
async def served(client: Client, *configs: FlowConfig) -> AsyncIterator[str]:
    """A worker process's worth: the flows' worker and a bus worker; yields the task queue."""
    queue = unique("q")
    async with serving(client, [(c, REPO) for c in configs], task_queue=queue):
        yield queue


def lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


def test_patterns_match_like_nats() -> None:
    assert matches("user.query", "user.query")
    assert matches("research.*", "research.complete")
    assert not matches("research.*", "research")
    assert not matches("research.*", "research.a.b")
    assert matches("user.>", "user.query") and matches("user.>", "user.query.retry")
    assert not matches("user.>", "user")
    assert matches("*.query", "user.query") and not matches("*.query", "user.ask")
    assert pattern_problem("a.>.b") == "pattern 'a.>.b': '>' may only be the last segment"
    assert pattern_problem("a.b*") is not None and pattern_problem("a..b") is not None
    assert topic_problem("a.*") is not None and topic_problem("a b") is not None
    assert topic_problem("research.complete") is None


def test_bus_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="may only be the last segment"):
        bus_flow("x", {"a": {"subscribes": ["a.>.b"]}})
    with pytest.raises(ConfigError, match="give the agent subscribes"):
        bus_flow("x", {"a": {"ordered": True}})
    config = bus_flow("x", {"a": {}}, bus={"publishes": ["user.*"]})
    with pytest.raises(ConfigError, match=r"not in \[bus\] publishes .* user\.\*"):
        client_request(config, "admin.reset", {}, identity="me")
    with pytest.raises(ConfigError, match="concrete topic"):
        client_request(config, "user.*", {}, identity="me")


async def test_a_published_event_reaches_every_subscriber_of_every_flow_once(
    client: Client, tmp_path: Path
) -> None:
    topic = unique("user") + ".query"
    log = tmp_path / "log"
    audit = bus_flow(unique("audit"), {"logger": {"subscribes": [topic.split(".")[0] + ".*"]},
                                       "notifier": {"subscribes": [topic, "*.query"]}})  # fmt: skip
    whole = bus_flow(unique("whole"), {"step": {}}, bus={"subscribes": [topic]})
    async with served(client, audit) as audit_queue, served(client, whole):
        registered = await registrations(client)
        assert isinstance(registered[audit.name], Registration)
        assert registered[audit.name].task_queue == audit_queue
        request = client_request(audit, topic, {"log_file": str(log)}, identity="test",
                                 event_id=unique("ev"))  # fmt: skip
        await publish(client, request)
        await publish(client, request)  # the same event id: delivered once
        await until(lambda: _count(log, 3))
        await asyncio.sleep(0)  # nothing more is on its way: a duplicate would come with them
    seen = sorted((line["agent"], line["meta"]["topic"]) for line in lines(log))
    assert seen == [("logger", topic), ("notifier", topic), ("step", topic)]
    for line in lines(log):
        assert line["meta"]["publisher"] == "client test"
        assert line["meta"]["parent_event"] == request.event_id


async def _count(log: Path, n: int) -> bool:
    return len(lines(log)) >= n


async def test_an_agent_publishes_across_flows_and_its_chain_is_recorded(
    client: Client, tmp_path: Path
) -> None:
    topic = unique("research") + ".complete"
    log = tmp_path / "log"
    research = bus_flow(unique("research"), {"researcher": {"publishes": [topic]},
                                             "local_sub": {"subscribes": [topic]}})  # fmt: skip
    email = bus_flow(unique("email"), {"emailer": {"subscribes": [topic]}})
    async with served(client, research) as research_queue, served(client, email):
        from agentflow.client.runner import Runner

        runner = Runner(research, client, research_queue)
        handle = await runner.start({"log_file": str(log), "publish": {"researcher": topic}})
        result = await handle.result()
        await until(lambda: _count(log, 3))
    assert [r.agent for r in result.results] == ["researcher", "local_sub"]  # in-run delivery
    by_agent = {line["agent"]: line for line in lines(log)}
    assert set(by_agent) == {"researcher", "local_sub", "emailer"}  # local_sub once, in-run
    emailer = by_agent["emailer"]["meta"]
    assert emailer["publisher"] == f"{research.name}.researcher"
    assert json.loads(emailer["bus_chain"]) == ["researcher"]
    assert by_agent["emailer"]["source"] == "researcher"
    local = by_agent["local_sub"]["meta"]  # in-run: told the same as a bus delivery
    assert local["publisher"] == emailer["publisher"]
    assert local["parent_event"] == emailer["parent_event"]
    assert json.loads(local["bus_chain"]) == ["researcher"]


async def test_a_publish_outside_publishes_is_dead_lettered_and_not_delivered(
    client: Client, tmp_path: Path
) -> None:
    allowed, forbidden = unique("ok") + ".t", unique("no") + ".t"
    log = tmp_path / "log"
    pub = bus_flow(unique("pub"), {"writer": {"publishes": [allowed]}})
    sub = bus_flow(unique("sub"), {"reader": {"subscribes": [forbidden, allowed]}})
    async with served(client, pub) as queue, served(client, sub):
        from agentflow.client.runner import Runner

        handle = await Runner(pub, client, queue).start(
            {"log_file": str(log), "publish": {"writer": f"{forbidden},{allowed}"}}
        )
        await handle.result()
        await until(lambda: _count(log, 2))

        async def lettered() -> bool:
            letters = [x async for x in list_letters(client, flow="agentflow-bus")]
            return any(forbidden in (x.error or "") for x in letters)

        await until(lettered)
        letters = [x async for x in list_letters(client, flow="agentflow-bus")
                   if forbidden in (x.error or "")]  # fmt: skip
    assert [line["meta"]["topic"] for line in lines(log) if line["agent"] == "reader"] == [allowed]
    assert len(letters) == 1
    assert letters[0].reason == "publish denied"
    assert letters[0].error == f"agent writer may not publish to {forbidden}"


async def test_ordered_deliveries_keep_publish_order_per_key(
    client: Client, tmp_path: Path
) -> None:
    topic = unique("orders") + ".created"
    log = tmp_path / "log"
    sub = bus_flow(unique("ordered"), {"keeper": {"subscribes": [topic], "ordered": True}},
                   bus={"max_parallel": 4})  # fmt: skip
    async with served(client, sub):
        for n in range(12):
            key = f"customer-{n % 3}"
            data = {"log_file": str(log), "n": n, "key": key}
            await publish(client, client_request(sub, topic, data, identity="t", key=key))
        await until(lambda: _count(log, 12))
    per_key: dict[str, list[int]] = {}
    for line in lines(log):
        per_key.setdefault(line["meta"]["bus_key"], []).append(line["n"])
    for key, order in per_key.items():
        assert order == sorted(order), key


async def test_deliveries_wait_while_a_subscriber_has_no_worker(
    client: Client, tmp_path: Path
) -> None:
    topic = unique("later") + ".t"
    log = tmp_path / "log"
    sub = bus_flow(unique("later"), {"reader": {"subscribes": [topic]}})
    other = bus_flow(unique("other"), {"reader": {"subscribes": [topic]}})
    queue = unique("q")
    # Register, then stop: the subscriber is known but none of its workers runs.
    async with serving(client, [(sub, REPO)], task_queue=queue):
        pass
    async with served(client, other):
        await publish(client, client_request(sub, topic, {"log_file": str(log)}, identity="t"))
        await until(lambda: _count(log, 1))  # the other subscriber goes on
    assert [line["agent"] for line in lines(log)] == ["reader"]
    async with serving(client, [(sub, REPO)], task_queue=queue):
        await until(lambda: _count(log, 2))
    assert [line["agent"] for line in lines(log)] == ["reader", "reader"]


async def test_cli_publish_topics_and_trace_follow_a_chain(
    cli_env: Path, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    query, done = unique("q") + ".asked", unique("r") + ".done"
    log = cli_env / "log"
    research = bus_flow(unique("research"), {"researcher": {"subscribes": [query],
                                                            "publishes": [done]}})  # fmt: skip
    mail = bus_flow(unique("mail"), {"mailer": {"subscribes": [done]}})
    (cli_env / "client.toml").write_text(
        f'[agent_flow]\nname = "cli"\n[orchestration]\nmode = "sequential"\n'
        f'sequential_agents = ["a"]\n[agents.a]\nhandler = "{BUS}"\n'
        f'[bus]\npublishes = ["{query.split(".")[0]}.*"]\n'
    )
    data = json.dumps({"log_file": str(log), "publish": {"researcher": done}})
    async with served(client, research), served(client, mail):
        code, out, err = await cli(capsys, "publish", "nope.t", "--config", "client.toml")
        assert code == 2 and "not in [bus] publishes" in err and "Traceback" not in err
        code, out, _ = await cli(capsys, "publish", query, "--config", "client.toml",
                                 "--input", data, "--event-id", "ev-1", "--json")  # fmt: skip
        assert code == 0, out
        assert json.loads(out)["event_id"] == "ev-1"
        await until(lambda: _count(log, 2))
        code, out, _ = await cli(capsys, "topics", "--counts")
        assert code == 0
        assert f"{query}  →  {research.name}.researcher" in out
        assert "1 delivered to it: 1 done, 0 dead-lettered, 0 pending" in out
        code, out, _ = await cli(capsys, "trace", "--event", "ev-1")
    assert code == 0, out
    assert "fan-out" in out and "researcher" in out and "mailer" in out
    assert "```mermaid" in out and "publishes" in out and "pending" not in out
    mailer_line = next(line for line in lines(log) if line["agent"] == "mailer")
    assert mailer_line["meta"]["publisher"] == f"{research.name}.researcher"


async def test_a_publish_cycle_across_flows_is_cut_by_max_hops(
    client: Client, tmp_path: Path
) -> None:
    ping, pong = unique("ping") + ".t", unique("pong") + ".t"
    log = tmp_path / "log"
    flow_a = bus_flow(unique("a"), {"pinger": {"subscribes": [pong]}},
                      orchestration_extra={"max_hops": 3})  # fmt: skip
    flow_b = bus_flow(unique("b"), {"ponger": {"subscribes": [ping]}})
    data = {"log_file": str(log), "publish": {"pinger": ping, "ponger": pong}}
    async with served(client, flow_a), served(client, flow_b):
        await publish(client, client_request(flow_a, ping, data, identity="t"))

        async def cut() -> bool:
            letters = [x async for x in list_letters(client, flow=flow_a.name)]
            return any("publish loop detected" in (x.error or "") for x in letters)

        await until(cut)
    calls = [line["agent"] for line in lines(log)]
    # ponger (chain []), pinger ([ponger]), ponger ([ponger, pinger]), then pinger's publish
    # would make a chain of 4 > max_hops: its event fails and is dead-lettered.
    assert calls == ["ponger", "pinger", "ponger", "pinger"]
