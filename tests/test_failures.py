"""Failure paths: retries, non-retryable errors, bad outputs, timeouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow import FlowFailedError, FlowResult
from agentflow.client.runner import Runner
from tests.conftest import flow_config, flow_runner, running_worker


async def _fail(client: Client, handler: str, data: dict[str, Any] | None = None,
                **agent: Any) -> FlowFailedError:  # fmt: skip
    config = flow_config("sequential", {"x": {"handler": handler, **agent}},
                         sequential_agents=["x"])  # fmt: skip
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await runner.run(data or {})
    return raised.value


def _only(result: object) -> tuple[str, int]:
    assert isinstance(result, FlowResult)
    [agent] = result.results
    return agent.status, agent.attempt


async def test_transient_failures_are_retried_until_success(client: Client, tmp_path: Path) -> None:
    config = flow_config("sequential", {"x": "tests.agents:flaky"}, sequential_agents=["x"],
                         retry_attempts=3)  # fmt: skip
    async with flow_runner(client, config) as runner:
        data = {"counter_file": str(tmp_path / "calls"), "fail_times": 2}
        result = await runner.run(data)
    assert result.state.data["flaky_calls"] == 3
    assert (result.results[0].status, result.results[0].attempt) == ("completed", 3)


async def test_retries_are_bounded_by_retry_attempts(client: Client, tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    data = {"counter_file": str(counter), "fail_times": 99}
    err = await _fail(client, "tests.agents:flaky", data, retry_attempts=1)
    assert counter.read_text() == "2"  # the first try plus one retry
    assert _only(err.result) == ("failed", 2)
    assert "ConnectionError: transient failure 2" in str(err)


async def test_fatal_error_is_not_retried(client: Client) -> None:
    err = await _fail(client, "tests.agents:fatal", retry_attempts=5)
    assert _only(err.result) == ("failed", 1)
    assert "agent 'x' (step 1 of 1) failed: FatalError: the input can never be processed" in str(
        err
    )


async def test_configured_error_types_are_not_retried(client: Client) -> None:
    err = await _fail(client, "tests.agents:value_error", retry_attempts=5,
                      retry={"non_retryable_errors": ["ValueError"]})  # fmt: skip
    assert _only(err.result) == ("failed", 1)
    assert "ValueError: bad value" in str(err)


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (
            "tests.agents:bad_output",
            "agent 'x' returned int; a handler returns State, dict or None",
        ),
        ("tests.agents:unserialisable", "agent 'x' returned a state that cannot be serialised"),
        (
            "tests.agents:huge",
            "agent 'x' returned a state of 3.1 MB; Temporal payloads are limited",
        ),
    ],
)
async def test_bad_output_fails_at_once_naming_the_agent(
    client: Client, handler: str, message: str
) -> None:
    err = await _fail(client, handler, retry_attempts=5)
    assert _only(err.result) == ("failed", 1)
    assert message in str(err)


async def test_agent_timeout_bounds_each_attempt(client: Client) -> None:
    err = await _fail(client, "tests.agents:slow", {"sleep": 3}, timeout_seconds=1,
                      retry_attempts=0)  # fmt: skip
    assert _only(err.result)[0] == "failed"
    assert "timeout" in str(err).lower()


async def test_flow_timeout_bounds_the_whole_run(client: Client) -> None:
    config = flow_config("sequential", {"x": "tests.agents:slow"}, sequential_agents=["x"],
                         timeout_seconds=1)  # fmt: skip
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await runner.run({"sleep": 4})
    assert (
        str(raised.value)
        == "flow 'test-sequential' timed out after 1s (orchestration.timeout_seconds)"
    )


async def test_worker_without_the_handler_fails_clearly(client: Client) -> None:
    served = flow_config("sequential", {"x": "tests.agents:append"}, sequential_agents=["x"])
    other = flow_config("sequential", {"x": "tests.agents:noop"}, sequential_agents=["x"])
    async with running_worker(client, served) as task_queue:
        with pytest.raises(FlowFailedError) as raised:
            await Runner(other, client, task_queue).run({})
    assert "handler 'tests.agents:noop' is not registered on this worker" in str(raised.value)
    assert _only(raised.value.result) == ("failed", 1)
