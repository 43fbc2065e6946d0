"""``circuit_breaker`` on agents and LLM providers: N failures open it, an open breaker fails
calls fast without running the agent (retried by Temporal when it half-opens), a half-open
trial that succeeds closes it, ``fallback_agent`` runs instead, and bad tables fail at load."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import opentelemetry.metrics._internal as metrics_internal
import pytest
from opentelemetry import trace as trace_api
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from temporalio.client import Client

from agentflow.client import telemetry
from agentflow.config import TelemetryConfig, parse_config
from agentflow.errors import ConfigError
from agentflow.inspect.trace.read import trace
from agentflow.models.flow import FlowFailedError
from tests.breaker_agents import CALLS, FAILING
from tests.conftest import REPO, flow_config, flow_runner
from tests.llm_server import FakeLLM, Raw, Text, running_fake


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


def _no_providers() -> None:
    trace_api._TRACER_PROVIDER_SET_ONCE = Once()
    trace_api._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    telemetry._installed = None


@pytest.fixture
def metric_reader() -> Iterator[InMemoryMetricReader]:
    """OpenTelemetry metrics into memory (as tests/test_telemetry.py installs them)."""
    _no_providers()
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()  # setup installs nothing without an exporter
    installed = telemetry.setup(TelemetryConfig(), span_exporter=spans, metric_reader=reader)
    assert installed is not None
    yield reader
    installed.shutdown()
    _no_providers()


def _changes(reader: InMemoryMetricReader) -> dict[tuple[str, str, str], int]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        (point.attributes["flow"], point.attributes["breaker"], point.attributes["state"]): (
            point.value
        )
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "agentflow.circuit_breaker.changes"
        for point in metric.data.data_points
    }


async def test_failures_open_the_breaker_which_fails_fast_then_half_opens_and_closes(
    client: Client,
) -> None:
    label = uuid.uuid4().hex
    breaker = {"failures": 2, "within": "60s", "open_for": "2s"}
    agents = {"a": {"handler": "tests.breaker_agents:flaky", "circuit_breaker": breaker}}
    config = flow_config("sequential", agents, sequential_agents=["a"], retry_attempts=2)
    FAILING.add(label)
    async with flow_runner(client, config) as runner:
        # Attempts 1 and 2 fail and open it; attempt 3 comes when it half-opens (Temporal's
        # retry delay from the failure), runs as the trial, fails: open again.
        with pytest.raises(FlowFailedError) as failed:
            await runner.run({"label": label})
        assert CALLS[label] == 3
        [first] = failed.value.result.results
        assert "circuit breaker of agent 'a' open for 2s" in (first.error or "")
        # The service is back: the first attempt fails fast without running the agent, the
        # retry comes when it half-opens, and that trial closes it.
        FAILING.discard(label)
        handle = await runner.start({"label": label})
        result = await handle.result()
        entries = await trace(await runner.client(), handle.workflow_id, agent="a")
    assert CALLS[label] == 4 and result.state.data["served"] is True
    assert [r.attempt for r in result.results] == [2]
    [retried] = [e for e in entries if e.action == "retried"]
    assert "CircuitOpen: circuit breaker of agent 'a' is open" in retried.detail
    [done] = [e for e in entries if e.action == "completed"]
    assert done.detail == "circuit breaker of agent 'a' closed"


async def test_an_open_breaker_runs_the_fallback_agent(
    client: Client, metric_reader: InMemoryMetricReader
) -> None:
    label = uuid.uuid4().hex
    breaker = {"failures": 1, "open_for": "1h", "fallback_agent": "b"}
    agents = {"a": {"handler": "tests.breaker_agents:flaky", "circuit_breaker": breaker},
              "b": "tests.breaker_agents:fallback"}  # fmt: skip
    config = flow_config("sequential", agents, sequential_agents=["a"], retry_attempts=0)
    FAILING.add(label)
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError):
            await runner.run({"label": label})  # opens it
        handle = await runner.start({"label": label})
        result = await handle.result()
        entries = await trace(await runner.client(), handle.workflow_id, agent="a")
    assert CALLS[label] == 1 and result.state.data["fallback"] is True
    [done] = [e for e in entries if e.action == "completed"]
    assert done.detail == "circuit breaker of agent 'a' is open: ran fallback agent 'b'"
    assert _changes(metric_reader) == {(config.name, "agent 'a'", "open"): 1}


async def test_a_provider_breaker_fails_llm_calls_fast(client: Client, fake: FakeLLM) -> None:
    fake.reset()
    raw = {
        "agent_flow": {"name": f"breaker-llm-{uuid.uuid4().hex[:6]}"},
        "llm": {"provider": "ollama", "model": "gemma3:1b", "base_url": fake.url("ollama"),
                "circuit_breaker": {"failures": 1, "open_for": "1h"}},
        "orchestration": {"mode": "sequential", "sequential_agents": ["writer"],
                          "retry_attempts": 0},
        "agents": {"writer": {"system_prompt": "Write."}},
    }  # fmt: skip
    config = parse_config(raw, base_dir=REPO, check_handlers=True)
    fake.script = [Raw(503, '{"error": "overloaded"}'), Text("never asked")]
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as opened:
            await runner.run({"message": "hi"})
        with pytest.raises(FlowFailedError) as fast:
            await runner.run({"message": "hi"})
    assert "circuit breaker of provider 'ollama' open for 3600s" in str(opened.value)
    assert len(fake.requests) == 1  # the second run asked no model
    [result] = fast.value.result.results
    assert result.error_type == "CircuitOpen"


@pytest.mark.parametrize(
    ("breaker", "says"),
    [
        ({"failures": 5, "within": "60s"}, "agents.a.circuit_breaker.open_for: required key"),
        ({"within": "0s", "open_for": "30s"}, "agents.a.circuit_breaker.within: Input should be"),
        ({"open_for": "0"}, "agents.a.circuit_breaker.open_for: '0' is not a duration"),
        ({"failures": 0, "open_for": "1s"}, "agents.a.circuit_breaker.failures: Input should"),
        ({"open_for": "1s", "fallback_agent": "nobody"},
         "agents.a.circuit_breaker.fallback_agent: 'nobody' names no agent"),
        ({"open_for": "1s", "window": "1s"}, "agents.a.circuit_breaker.window: unknown key"),
    ],
)  # fmt: skip
def test_bad_breakers_fail_at_load(breaker: dict[str, Any], says: str) -> None:
    raw = {"orchestration": {"mode": "sequential", "sequential_agents": ["a"]},
           "agents": {"a": {"handler": "tests.breaker_agents:flaky",
                            "circuit_breaker": breaker}}}  # fmt: skip
    with pytest.raises(ConfigError, match=re.escape(says)):
        parse_config(raw)


def test_a_provider_breaker_needs_open_for() -> None:
    raw = {"orchestration": {"mode": "sequential", "sequential_agents": ["a"]},
           "agents": {"a": {"system_prompt": "Hi."}},
           "providers": {"openai": {"circuit_breaker": {"failures": 3}}}}  # fmt: skip
    says = "providers.openai.circuit_breaker.open_for: required key is missing"
    with pytest.raises(ConfigError, match=re.escape(says)):
        parse_config(raw)
