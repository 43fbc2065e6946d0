"""What a failed model request writes to the worker's log: one INFO line per failed attempt
(with its run, agent and attempt), the whole traceback only at DEBUG, and not the SDK's own
"Completing activity as failed" traceback on top."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator

import pytest
from temporalio import activity
from temporalio.client import Client

import agentflow.activities.llm_models  # noqa: F401 - the LLM activity's log filter
from agentflow.config import FlowConfig, parse_config
from agentflow.models.flow import FlowFailedError
from tests.conftest import REPO, flow_runner

SDK_FAILED = "Completing activity as failed"


def unreachable_llm_flow(port: int) -> FlowConfig:
    """One LLM agent whose server refuses connections; two attempts (one retry)."""
    raw = {
        "agent_flow": {"name": f"llm-down-{uuid.uuid4().hex[:6]}", "provider": "ollama"},
        "llm": {"model": "gemma3:1b"},
        "providers": {"ollama": {"base_url": f"http://127.0.0.1:{port}"}},
        "orchestration": {
            "mode": "sequential",
            "timeout_seconds": 60,
            "sequential_agents": ["writer"],
            "retry_attempts": 1,
            "retry": {"initial_interval_seconds": 0.05},
        },
        "agents": {"writer": {"role": "writer", "system_prompt": "You write."}},
    }
    return parse_config(raw, base_dir=REPO, check_handlers=True)


@pytest.fixture
def refused_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        yield sock.getsockname()[1]


async def run_failing(client: Client, port: int) -> None:
    async with flow_runner(client, unreachable_llm_flow(port)) as runner:
        with pytest.raises(FlowFailedError) as info:
            await runner.run({"message": "hello"})
    assert [r.attempt for r in info.value.result.results] == [2]


def lines_about_the_failure(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "agentflow.llm" or (r.name == "temporalio.activity" and r.exc_info)
    ]


async def test_a_failed_attempt_is_one_info_line(
    client: Client, refused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await run_failing(client, refused_port)
    records = lines_about_the_failure(caplog)
    said = f"agent 'writer': ollama cannot be reached at http://127.0.0.1:{refused_port}"
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.INFO, f"{said}: Connection error. (LLMUnreachable)")
    ] * 2
    # The worker's log format shows which run, agent and attempt (agentflow/worker/logs.py).
    assert [(r.temporal_activity["attempt"], r.agent) for r in records] == [  # type: ignore[attr-defined]
        (1, "writer"),
        (2, "writer"),
    ]
    assert all(r.exc_info is None for r in records)
    assert "Traceback" not in caplog.text
    assert SDK_FAILED not in caplog.text


async def test_the_traceback_is_logged_at_debug(
    client: Client, refused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await run_failing(client, refused_port)
    debug = [r for r in caplog.records if r.name == "agentflow.llm" and r.levelno == logging.DEBUG]
    assert [r.getMessage() for r in debug] == ["agent 'writer': the ollama request failed"] * 2
    assert all(r.exc_info for r in debug)
    # Whole: the model error with the transport errors under it, as it was raised.
    assert caplog.text.count("pydantic_ai.exceptions.ModelConnectionError") == 2
    assert caplog.text.count("ConnectError: All connection attempts failed") >= 2
    assert "The above exception was the direct cause of the following exception" in caplog.text
    assert SDK_FAILED not in caplog.text


async def test_other_activity_failures_keep_the_sdks_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only a failure the LLM activity has logged is left out of the SDK's records."""
    caplog.set_level(logging.INFO)
    try:
        raise ValueError("a handler's own bug")
    except ValueError:
        activity.logger.warning(SDK_FAILED, exc_info=True)
    [record] = [r for r in caplog.records if r.getMessage() == SDK_FAILED]
    assert record.exc_info is not None and "a handler's own bug" in caplog.text
