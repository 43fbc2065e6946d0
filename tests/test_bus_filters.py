"""Content-based routing with CEL: filtered subscriptions (evaluated by the bus's fan-out) and
route mode's ``[[orchestration.routes]]`` (evaluated by the ``decide_route`` activity)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow import FlowFailedError
from agentflow.client.bus import client_request, publish
from agentflow.client.dead_letters import list_letters
from agentflow.client.runner import Runner
from agentflow.config.expressions import ExpressionFailed, evaluate, expression_problem
from agentflow.errors import ConfigError
from tests.conftest import cli, flow_config, flow_runner
from tests.test_bus_durable import bus_flow, lines, served, unique, until

BIG = "data.total > 100 && metadata.topic == topic"
EU = "has(metadata.region) && metadata.region == 'eu'"


async def test_expressions_compile_at_load_and_name_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert expression_problem(BIG) is None
    assert expression_problem("data.items.exists(i, i.qty > 2) && size(topic) > 0") is None
    assert "unknown variable 'total'" in str(expression_problem("total > 1"))
    assert "CEL syntax error" in str(expression_problem("data.total >"))
    assert evaluate(BIG, {"data": {"total": 150}, "metadata": {"topic": "t"}, "topic": "t"})
    with pytest.raises(ExpressionFailed, match="no such member"):
        evaluate("data.total > 1", {"data": {}})
    with pytest.raises(ExpressionFailed, match="not a bool"):
        evaluate("data.total", {"data": {"total": 1}})

    flow = tmp_path / "agentflow.toml"
    flow.write_text(
        '[agent_flow]\nname = "f"\n[orchestration]\nmode = "route"\n'
        '[[orchestration.routes]]\nwhen = "data.total >"\nagent = "a"\n'
        '[[orchestration.routes]]\nagent = "ghost"\n'
        '[agents.a]\nhandler = "x:a"\n'
        'subscribes = ["t", { topic = "order.*", when = "order.total > 1" }]\n'
    )
    code, _, out = await cli(capsys, "validate", "--config", str(flow))
    assert code == 2, out
    assert "agents.a.subscribes[1].when: CEL expression 'order.total > 1' uses unknown " \
        "variable 'order'" in out  # fmt: skip
    assert "orchestration.routes[0].when: CEL syntax error in 'data.total >'" in out
    assert "orchestration.routes[1].agent: agent 'ghost' is not defined" in out
    assert "Traceback" not in out
    with pytest.raises(ConfigError, match="exactly the keys topic and when"):
        flow_config("route", {"a": {"handler": "tests.agents:router",
                                    "subscribes": [{"topic": "t", "if": "true"}]}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"routes\[0\] has no `when`"):
        flow_config("route", {"a": "tests.agents:router"},
                    routes=[{"agent": "a"}, {"agent": "a", "when": "true"}])  # fmt: skip
    with pytest.raises(ConfigError, match="metadata key 'topic' is set by the bus"):
        client_request(flow_config("route", {"a": "tests.agents:router"}), "t", {},
                       identity="t", metadata={"topic": "x"})  # fmt: skip
    with pytest.raises(ConfigError, match="routes are for mode"):
        flow_config("sequential", {"a": "tests.agents:router"}, sequential_agents=["a"],
                    routes=[{"agent": "a"}])  # fmt: skip


async def test_filtered_subscribers_get_only_matching_events(
    client: Client, tmp_path: Path
) -> None:
    topic = unique("order") + ".created"
    log = tmp_path / "log"
    filtered = {"subscribes": [{"topic": topic.split(".")[0] + ".*", "when": BIG}]}
    eu = {"subscribes": [{"topic": topic, "when": EU}]}  # the publisher's own metadata
    sub = bus_flow(unique("sub"), {"plain": {"subscribes": [topic]}, "big": filtered, "eu": eu})
    # The publisher's own filtered subscriber gets the event through the bus, not in the run.
    pub = bus_flow(
        unique("pub"), {"writer": {}, "mine": {"subscribes": [{"topic": topic, "when": BIG}]}}
    )
    async with served(client, sub), served(client, pub) as queue:
        for n, data in enumerate(({"total": 150}, {"total": 50}, {"no_total": True})):
            region = {"region": ["eu", "us", "us"][n]}
            request = client_request(sub, topic, {"log_file": str(log), "n": n, **data},
                                     identity="t", metadata=region)  # fmt: skip
            await publish(client, request)
        run = await Runner(pub, client, queue).run(
            {"log_file": str(log), "n": 3, "total": 500, "publish": {"writer": topic}}
        )
        assert [r.agent for r in run.results] == ["writer"]  # "mine" is not a step of the run

        async def lettered() -> list[Any]:
            return [x async for x in list_letters(client, flow="agentflow-bus")
                    if f"{sub.name}.big" in (x.error or "")]  # fmt: skip

        await until(lambda: _has(log, 9))
        await until(lambda: _nonempty(lettered()))
        letters = await lettered()
    got = sorted((line["agent"], line["n"]) for line in lines(log) if line["agent"] != "writer")
    assert got == [("big", 0), ("big", 3), ("eu", 0), ("mine", 0), ("mine", 3),
                   ("plain", 0), ("plain", 1), ("plain", 2), ("plain", 3)]  # fmt: skip
    assert [line["meta"]["region"] for line in lines(log) if line["agent"] == "eu"] == ["eu"]
    assert len(letters) == 1
    assert letters[0].reason == "expression failed"
    error = letters[0].error or ""
    assert BIG in error and "no such member" in error
    assert ".big: when" in error and ".mine: when" in error  # both subscribers, one letter


async def _has(log: Path, count: int) -> bool:
    return len([line for line in lines(log) if line["agent"] != "writer"]) >= count


async def _nonempty(found: Any) -> bool:
    return bool(await found)


ROUTES = [
    {"when": "data.total > 100", "agent": "big"},
    {"when": "has(metadata.region) && metadata.region == 'eu'", "agent": "eu"},
    {"agent": "small"},
]


async def test_routes_pick_the_first_agent_and_handoffs_still_win(client: Client) -> None:
    agents = {name: "tests.agents:router" for name in ("big", "eu", "small")}
    config = flow_config("route", agents, routes=ROUTES,
                         tables={"sessions": {}})  # fmt: skip
    async with flow_runner(client, config) as runner:
        big = await runner.run({"total": 150, "routes": {"big": "small"}})
        eu = await runner.run({"total": 1}, metadata={"region": "eu"})
        default = await runner.run({"total": 1})
        targeted = await runner.run({"total": 150}, target="eu")
        with pytest.raises(FlowFailedError) as raised:
            await runner.run({"total": "many"})
        handle = await runner.emit({"total": "many"}, session_id=unique("s"), wait=True)
        outcome = await handle.outcome()
    assert big.state.data["trail"] == ["big", "small"]  # meta["route"] still hands off
    assert eu.state.data["trail"] == ["eu"] and default.state.data["trail"] == ["small"]
    assert targeted.state.data["trail"] == ["eu"]
    assert "orchestration.routes[0].when 'data.total > 100' failed" in str(raised.value)
    assert outcome.status == "dead_lettered" and outcome.reason == "expression failed"
    assert "data.total > 100" in (outcome.error or "")
