"""Publish/subscribe: ``meta["publish"]`` delivers the publisher's output to every enabled
subscriber of the topic, as independent agent steps next to the flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner

import agentflow.workflows.loop as loop_workflow
from agentflow.config import parse_config
from agentflow.errors import ConfigError
from agentflow.inspect.graph.flow import config_graph, run_graph
from agentflow.inspect.trace import trace
from agentflow.models.flow import FlowFailedError
from tests.conftest import REPO, flow_config, flow_runner
from tests.test_graph import parse_set

BUS = "tests.agents:bus_agent"


def subscriber(*topics: str, handler: str = BUS, **table: Any) -> dict[str, Any]:
    return {"handler": handler, "subscribes": list(topics), **table}


def deliveries(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return sorted((json.loads(line) for line in lines), key=lambda seen: seen["agent"])


def agents_and_topics(results: list[Any]) -> list[tuple[str, str | None]]:
    return [(r.agent, r.topic) for r in results]


async def test_subscribers_get_the_event_and_their_output_is_not_merged(
    client: Client, tmp_path: Path
) -> None:
    config = flow_config(
        "sequential",
        {"a": BUS, "b": "tests.agents:append", "s1": subscriber("news"),
         "s2": subscriber("other", "news"), "s3": subscriber("other"),
         "quiet": subscriber("news", enabled=False), "deaf": subscriber("sports")},
        sequential_agents=["a", "b"],
    )  # fmt: skip
    log = tmp_path / "log"
    data = {"log_file": str(log), "publish": {"a": "news, other"}}
    async with flow_runner(client, config) as runner:
        handle = await runner.start(data, session_id="s-bus")
        result = await handle.result()
        progress = await handle.progress()
        entries = await trace(await runner.client(), handle.workflow_id)
    assert result.state.data["trail"] == ["a", "b"]  # subscribers' trails are not merged
    assert "publish" not in result.state.meta
    # Each subscriber right after its publisher, in topic then config order.
    assert agents_and_topics(result.results) == [
        ("a", None), ("s1", "news"), ("s2", "news"), ("s2", "other"), ("s3", "other"),
        ("b", None),
    ]  # fmt: skip
    assert all(r.status == "completed" for r in result.results)
    seen = deliveries(log)
    # Subscribers run in parallel threads: the log's order among them is the OS's.
    assert (seen[0]["agent"], seen[0]["meta"].get("topic")) == ("a", None)
    assert sorted((s["agent"], s["meta"]["topic"]) for s in seen[1:]) == [
        ("s1", "news"), ("s2", "news"), ("s2", "other"), ("s3", "other"),
    ]  # fmt: skip
    for delivery in seen[1:]:
        assert delivery["source"] == "a" and delivery["trail"] == ["a"]
        assert "publish" not in delivery["state_meta"]  # not passed on to subscribers
    # Subscribers were scheduled with b, by the same workflow task: they ran beside the flow.
    starts = {e.agent: e.batch for e in entries if e.action == "started" and e.agent}
    assert starts["s1"] == starts["s2"] == starts["s3"] == starts["b"] != starts["a"]
    assert (progress.completed, progress.failed, progress.total) == (6, 0, 6)
    assert all(e.detail for e in entries if e.topic and e.action == "started")


async def test_a_failing_subscriber_is_recorded_and_the_flow_completes(client: Client) -> None:
    config = flow_config(
        "collaborative",
        {"a": BUS, "b": BUS, "good": subscriber("news"),
         "bad": subscriber("news", handler="tests.agents:value_error", retry_attempts=1)},
        collaborative_agents=["a", "b"],
    )  # fmt: skip
    async with flow_runner(client, config) as runner:
        result = await runner.run({"publish": {"b": "news"}})
    assert result.status == "completed"
    assert result.state.data["trail"] == ["b"] and "publish" not in result.state.meta
    assert agents_and_topics(result.results) == [
        ("a", None), ("b", None), ("good", "news"), ("bad", "news"),
    ]  # fmt: skip
    bad = result.results[-1]
    assert (bad.status, bad.attempt) == ("failed", 2) and "bad value" in (bad.error or "")


async def test_a_subscriber_may_publish_in_turn(client: Client, tmp_path: Path) -> None:
    config = flow_config(
        "route",
        {"a": BUS, "relay": subscriber("t1"), "sink": subscriber("t2")},
        entry_agent="a",
    )
    log = tmp_path / "log"
    data = {"log_file": str(log), "publish": {"a": "t1", "relay": "t2"}}
    async with flow_runner(client, config) as runner:
        handle = await runner.start(data)
        result = await handle.result()
        chart = run_graph(await trace(await runner.client(), handle.workflow_id))
    assert result.path == ["a"] and result.state.data["trail"] == ["a"]
    assert agents_and_topics(result.results) == [("a", None), ("relay", "t1"), ("sink", "t2")]
    sink = deliveries(log)[-1]
    assert (sink["agent"], sink["source"], sink["meta"]["topic"]) == ("sink", "relay", "t2")
    assert sink["trail"] == ["a", "relay"]  # the relay's output state
    _, edges = parse_set(chart)
    assert edges == {
        ("test-route (route)", "a ✓", ""), ("a ✓", "completed", ""),
        ("a ✓", "relay ✓", "t1"), ("relay ✓", "sink ✓", "t2"),
    }  # fmt: skip


async def test_a_publish_cycle_fails_the_run_clearly(client: Client) -> None:
    config = flow_config(
        "sequential",
        {"a": BUS, "ping": subscriber("ping"), "pong": subscriber("pong")},
        sequential_agents=["a"],
        max_hops=3,
    )
    data = {"publish": {"a": "ping", "ping": "pong", "pong": "ping"}}
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as failed:
            await runner.run(data)
    message = "publish loop detected: a → ping → pong → ping → … (max_hops = 3)"
    assert message in str(failed.value)
    partial = failed.value.result
    assert [r.agent for r in partial.results] == ["a", "ping", "pong", "ping"]


async def test_a_topic_without_subscribers_is_traced_and_ignored(client: Client) -> None:
    config = flow_config(
        "sequential",
        {"a": BUS, "b": BUS, "s": subscriber("news")},
        sequential_agents=["a", "b"],
    )
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"publish": {"a": "void"}})
        result = await handle.result()
        entries = await trace(await runner.client(), handle.workflow_id, flow_only=True)
    assert [r.agent for r in result.results] == ["a", "b"]
    assert "publish" not in result.state.meta
    assert [(e.agent, e.action, e.detail.split(";")[0]) for e in entries if e.agent] == [
        ("a", "completed", ""), ("a", "published", "void → no subscribers in this flow"),
        ("b", "completed", ""),
    ]  # fmt: skip
    published = next(e for e in entries if e.action == "published")
    assert published.detail.endswith(f"on the bus as {published.bus_event}")


async def test_trace_and_graphs_show_publishes_and_subscriptions(client: Client) -> None:
    config = flow_config(
        "sequential",
        {"a": BUS, "b": BUS, "s1": subscriber("news"), "s2": subscriber("news")},
        sequential_agents=["a", "b"],
    )
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"publish": {"a": "news"}})
        await handle.result()
        entries = await trace(await runner.client(), handle.workflow_id)
    published = next(e for e in entries if e.action == "published")
    a_done = next(e for e in entries if (e.agent, e.action) == ("a", "completed"))
    assert (published.agent, published.topic) == ("a", "news")
    assert published.detail.startswith("news → s1, s2 in this flow; on the bus as ")
    assert published.history_event_id == a_done.history_event_id
    s1 = [e for e in entries if e.agent == "s1"]
    assert [(e.action, e.topic, e.source_event) for e in s1] == [
        ("started", "news", a_done.history_event_id),
        ("completed", "news", a_done.history_event_id),
    ]
    assert s1[0].detail == "news from a"
    flow_done = entries[-1]
    assert flow_done.changed_keys == ["meta.publish", "trail"]  # not the subscribers' keys
    _, edges = parse_set(run_graph(entries))
    assert edges == {
        ("test-sequential (sequential)", "a ✓", ""), ("a ✓", "b ✓", ""),
        ("b ✓", "completed", ""), ("a ✓", "s1 ✓", "news"), ("a ✓", "s2 ✓", "news"),
    }  # fmt: skip
    labels, edges = parse_set(config_graph(config))
    assert "topic: news" in labels.values()
    assert {("topic: news", "s1", "subscribes"), ("topic: news", "s2", "subscribes")} <= edges
    assert ("test-sequential (sequential)", "s1", "") not in edges


async def test_publishing_inside_a_loop_that_continues_as_new(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_workflow, "ITERATIONS_PER_RUN", 2)
    config = flow_config("loop", {"c": BUS, "s": subscriber("tick")}, loop_agent="c",
                         max_iterations=5)  # fmt: skip
    log = tmp_path / "log"
    data = {"log_file": str(log), "publish": {"c": "tick"}}
    async with flow_runner(client, config, workflow_runner=UnsandboxedWorkflowRunner()) as runner:
        handle = await runner.start(data)
        result = await handle.result()
        entries = await trace(await runner.client(), handle.workflow_id)
    assert (result.iterations, result.stop_reason) == (5, "max_iterations")
    assert result.state.data["trail"] == ["c"] * 5
    assert agents_and_topics(result.results) == [("c", None), ("s", "tick")] * 5
    ticks = [s for s in deliveries(log) if s["agent"] == "s"]
    assert sorted(len(s["trail"]) for s in ticks) == [1, 2, 3, 4, 5]  # every delivery ran once
    runs = list(dict.fromkeys(e.run_id for e in entries))
    assert len(runs) == 3
    for run in runs:  # each run's deliveries ended in that run, before it continued as new
        lines = [e for e in entries if e.run_id == run]
        assert sum(e.agent == "s" and e.action == "completed" for e in lines) == sum(
            e.action == "published" for e in lines
        )


def test_config_validates_subscriptions() -> None:
    def problem(agent: dict[str, Any]) -> str:
        raw = {
            "orchestration": {"mode": "sequential", "sequential_agents": ["a"]},
            "agents": {"a": {"handler": BUS}, "s": {"handler": BUS, **agent}},
        }
        with pytest.raises(ConfigError) as err:
            parse_config(raw, base_dir=REPO)
        return str(err.value)

    assert "agents.s.subscribes: topic names must be non-empty strings" in problem(
        {"subscribes": [" "]}
    )
    assert "agents.s.subscribes: entry 0 (1) is neither a topic or pattern nor a table" in problem(
        {"subscribes": [1]}
    )
    assert "no commas" in problem({"subscribes": ["a,b"]})
    assert "topic 'x' is listed twice" in problem({"subscribes": ["x", "x"]})
    assert "unknown key (did you mean 'subscribes'?)" in problem({"subscribe": ["x"]})
    config = flow_config("sequential", {"a": BUS, "s": subscriber("x"),
                                        "off": subscriber("x", "y", enabled=False)},
                         sequential_agents=["a"])  # fmt: skip
    assert config.subscribers("x") == ["s"] and config.topics() == ["x"]
