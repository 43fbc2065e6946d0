"""OpenTelemetry: the span tree of a run, no extra spans on replay, agent metrics (agents in a
batch of local agents too), config."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import opentelemetry.metrics._internal as metrics_internal
import opentelemetry.trace as trace_api
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from agentflow.client import telemetry
from agentflow.config import TelemetryConfig, parse_config
from agentflow.errors import ConfigError
from agentflow.worker.logs import RunContext
from agentflow.worker.plugin import ALL_WORKFLOWS
from tests.conftest import flow_config, flow_runner


def _reset_globals() -> None:
    trace_api._TRACER_PROVIDER_SET_ONCE = Once()
    trace_api._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    telemetry._installed = None


@pytest.fixture
def otel() -> Iterator[tuple[telemetry.Telemetry, InMemorySpanExporter, InMemoryMetricReader]]:
    _reset_globals()
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    installed = telemetry.setup(TelemetryConfig(), span_exporter=spans, metric_reader=reader)
    assert installed is not None
    yield installed, spans, reader
    installed.shutdown()
    _reset_globals()


def _tree(spans: tuple[ReadableSpan, ...]) -> list[tuple[str, str | None]]:
    by_id = {span.context.span_id: span for span in spans}
    return sorted(
        (span.name, by_id[span.parent.span_id].name if span.parent else None) for span in spans
    )


def _traced(client: Client, installed: telemetry.Telemetry) -> Client:
    """``client`` with the tracing interceptor, as ``connect`` makes it."""
    config = client.config()
    config["interceptors"] = installed.interceptors
    return Client(**config)


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Data points by metric name."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: list(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


async def test_span_tree_of_a_run_and_no_spans_on_replay(
    client: Client,
    otel: tuple[telemetry.Telemetry, InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    installed, exporter, _ = otel
    traced = _traced(client, installed)
    config = flow_config(
        "sequential", {"a": "tests.agents:append", "b": "tests.agents:append"},
        sequential_agents=["a", "b"],
    )  # fmt: skip
    # max_cached_workflows=0: every workflow task replays the history so far.
    async with flow_runner(traced, config, max_cached_workflows=0) as runner:
        handle = await runner.start({})
        await handle.result()
    spans = exporter.get_finished_spans()
    # TracingInterceptor parents workflow-side spans on the client's StartWorkflow span (its
    # workflow spans are zero-length markers); the agent spans hang below each activity.
    assert _tree(spans) == sorted([
        ("StartWorkflow:SequentialFlow", None),
        ("RunWorkflow:SequentialFlow", "StartWorkflow:SequentialFlow"),
        # Each agent is its own activity type (agentflow/activity_types.py).
        ("StartActivity:agent:a", "StartWorkflow:SequentialFlow"),
        ("StartActivity:agent:b", "StartWorkflow:SequentialFlow"),
        ("RunActivity:agent:a", "StartActivity:agent:a"),
        ("RunActivity:agent:b", "StartActivity:agent:b"),
        ("agent a", "RunActivity:agent:a"),
        ("agent b", "RunActivity:agent:b"),
        ("CompleteWorkflow:SequentialFlow", "StartWorkflow:SequentialFlow"),
    ])  # fmt: skip
    assert len({span.context.trace_id for span in spans}) == 1
    agent_a = next(span for span in spans if span.name == "agent a")
    assert dict(agent_a.attributes or {}) == {"agent": "a", "flow": "test-sequential",
                                              "attempt": 1}  # fmt: skip
    before = len(spans)
    history = await handle.handle.fetch_history()
    replayer = Replayer(
        workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter,
        interceptors=installed.interceptors,
    )  # fmt: skip
    await replayer.replay_workflow(history)
    assert len(exporter.get_finished_spans()) == before


async def test_agent_metrics_count_durations_and_errors(
    client: Client,
    tmp_path: Path,
    otel: tuple[telemetry.Telemetry, InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    _, _, reader = otel
    config = flow_config(
        "sequential",
        {"f": {"handler": "tests.agents:flaky", "retry_attempts": 3}, "a": "tests.agents:noop"},
        sequential_agents=["f", "a"],
    )
    async with flow_runner(client, config) as runner:
        await runner.run({"counter_file": str(tmp_path / "calls"), "fail_times": 2})
    points = _points(reader)
    durations = {p.attributes["agent"]: p.count for p in points["agentflow.agent.duration"]}
    assert durations == {"f": 3, "a": 1}  # one per attempt
    [errors] = points["agentflow.agent.errors"]
    assert errors.value == 2
    assert dict(errors.attributes) == {"agent": "f", "flow": "test-sequential",
                                       "error.type": "ConnectionError"}  # fmt: skip


def test_telemetry_config_defaults_and_errors() -> None:
    _reset_globals()
    assert telemetry.setup(TelemetryConfig()) is None  # "none" installs nothing
    assert telemetry.interceptors(TelemetryConfig(exporter="none")) == []
    raw = {"orchestration": {"mode": "loop", "loop_agent": "c"},
           "agents": {"c": {"handler": "x:y"}}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"telemetry\.exporter: .*'jaeger'"):
        parse_config({**raw, "telemetry": {"exporter": "jaeger"}})
    with pytest.raises(ConfigError, match=r"telemetry\.endpiont: unknown key.*endpoint"):
        parse_config({**raw, "telemetry": {"endpiont": "http://x"}})
    config = parse_config({**raw, "telemetry": {"exporter": "console"}})
    installed = telemetry.setup(config.telemetry)
    assert installed is not None and len(installed.interceptors) == 1
    installed.shutdown()
    _reset_globals()
    # otlp without its optional package names the extra to install
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"pip install 'agentflow\[otlp\]'"):
            telemetry.setup(TelemetryConfig(exporter="otlp"))
    _reset_globals()


async def test_worker_log_lines_carry_run_agent_and_attempt(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    config = flow_config("sequential", {"a": "tests.agents:append"}, sequential_agents=["a"])
    caplog.set_level(logging.INFO)
    async with flow_runner(client, config, max_cached_workflows=0) as runner:
        handle = await runner.start({})
        await handle.result()
    context = RunContext()
    lines = []
    for record in caplog.records:
        context.filter(record)
        if record.run_id == handle.run_id:
            lines.append((record.name, record.agent, record.attempt, record.getMessage()))
    activity = [line for line in lines if line[0] == "temporalio.activity"]
    workflow = [line for line in lines if line[0] == "temporalio.workflow"]
    assert [(a, n) for _, a, n, _ in activity] == [("a", 1), ("a", 1)]
    assert activity[0][3].startswith("agent a started")
    assert activity[1][3].startswith("agent a completed in")
    # Replays (every task, with max_cached_workflows=0) must not repeat workflow lines.
    assert [(a, m.split(" (")[0]) for _, a, _, m in workflow] == [
        ("a", "agent a started"), ("a", "agent a completed"),
    ]  # fmt: skip


async def test_agents_in_a_batch_are_measured_one_by_one(
    client: Client,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    otel: tuple[telemetry.Telemetry, InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    """a, f, b are local, so they run as batches (activities/batch.py); r is regular. f fails
    twice: mid-batch (attempt 1, retried by the workflow in a new batch [f, b]), then first in
    that batch (attempt 2, retried by Temporal), and succeeds on attempt 3."""
    installed, exporter, reader = otel
    traced = _traced(client, installed)
    config = flow_config(
        "sequential",
        {"a": "tests.agents:append", "b": "tests.agents:append",
         "f": {"handler": "tests.agents:flaky", "retry_attempts": 3},
         "r": {"handler": "tests.agents:append", "local": False}},
        sequential_agents=["a", "f", "b", "r"], local_agents=True,
    )  # fmt: skip
    caplog.set_level(logging.INFO)
    async with flow_runner(traced, config) as runner:
        await runner.run({"counter_file": str(tmp_path / "calls"), "fail_times": 2})
    spans = exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in spans}
    agents = sorted(
        (span.name, (span.attributes or {})["attempt"], by_id[span.parent.span_id].name)
        for span in spans
        if span.name.startswith("agent ") and span.parent
    )
    batch = "RunActivity:run_local_agents"
    assert agents == [
        ("agent a", 1, batch), ("agent b", 1, batch),
        ("agent f", 1, batch), ("agent f", 2, batch), ("agent f", 3, batch),
        ("agent r", 1, "RunActivity:agent:r"),
    ]  # fmt: skip
    assert len([span for span in spans if span.name.startswith("agent ")]) == len(agents)
    points = _points(reader)
    durations = {p.attributes["agent"]: p.count for p in points["agentflow.agent.duration"]}
    assert durations == {"a": 1, "f": 3, "b": 1, "r": 1}  # the batch is not an agent
    [errors] = points["agentflow.agent.errors"]
    assert errors.value == 2
    assert dict(errors.attributes) == {"agent": "f", "flow": "test-sequential",
                                       "error.type": "ConnectionError"}  # fmt: skip
    lines = [r.getMessage().split(" (")[0] for r in caplog.records
             if r.name == "temporalio.activity" and getattr(r, "agent", None) == "f"]  # fmt: skip
    assert [line.split(" in ")[0] for line in lines] == [
        "agent f started", "agent f failed: ConnectionError: transient failure 1",
        "agent f started", "agent f failed: ConnectionError: transient failure 2",
        "agent f started", "agent f completed",
    ]  # fmt: skip
    # The log format's attempt is the agent's own, not its batch activity's.
    f_records = [r for r in caplog.records if r.name == "temporalio.activity"]
    f_records = [r for r in f_records if r.__dict__.get("agent") == "f"]
    for record in f_records:
        RunContext().filter(record)
    assert [r.attempt for r in f_records] == [1, 1, 2, 2, 3, 3]
