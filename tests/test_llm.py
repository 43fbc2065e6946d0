"""LLM agents (pydantic-ai) against a local server on 127.0.0.1 that speaks OpenAI's and
Anthropic's wire formats (tests/llm_server.py): providers, keys from the worker's environment,
retryable and non-retryable failures, structured output, usage and the token budget."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow.config import FlowConfig, parse_config
from agentflow.errors import ConfigError
from agentflow.models.flow import FlowFailedError
from tests.conftest import REPO, cli, flow_runner
from tests.llm_server import Calls, FakeLLM, Raw, running_fake

KEY_VAR = "AGENTFLOW_TEST_LLM_KEY"
KEY = "${" + KEY_VAR + "}"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


@pytest.fixture
def llm_server(fake: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> FakeLLM:
    fake.reset()
    monkeypatch.setenv(KEY_VAR, "sk-test-123")
    return fake


def llm_flow(
    provider: str,
    base_url: str,
    *,
    agents: dict[str, dict[str, Any]] | None = None,
    retry_attempts: int = 2,
    orchestration: dict[str, Any] | None = None,
    llm: dict[str, Any] | None = None,
    **table: Any,
) -> FlowConfig:
    """A sequential flow of LLM agents (writer then critic) using ``[providers.PROVIDER]``
    (whose key, if any, is read from KEY_VAR)."""
    raw = {
        "agent_flow": {"name": f"llm-{provider}-{uuid.uuid4().hex[:6]}", "provider": provider},
        "llm": {"model": "gemma3:1b", **(llm or {})},
        "providers": {provider: {"base_url": base_url, **table}},
        "orchestration": {
            "mode": "sequential",
            "timeout_seconds": 60,  # a worker that never runs the agents fails, not hangs
            "sequential_agents": list(agents or ["writer", "critic"]),
            "retry_attempts": retry_attempts,
            "retry": {"initial_interval_seconds": 0.05},
            **(orchestration or {}),
        },
        "agents": agents
        or {
            "writer": {"role": "writer", "system_prompt": "You write."},
            "critic": {"role": "critic", "system_prompt": "You criticise."},
        },
    }
    return parse_config(raw, base_dir=REPO, check_handlers=True)


# provider, its [providers] table, the path asked, the header carrying the key
PROVIDERS = {
    "ollama": ({}, "/v1/chat/completions", None),
    "openai": ({"api_key": KEY}, "/v1/chat/completions", "authorization"),
    "azure": (
        {"api_key": KEY, "deployment": "gemma-deploy"},
        "/openai/deployments/gemma-deploy/chat/completions",
        "api-key",
    ),
    "anthropic": ({"api_key": KEY}, "/v1/messages", "authorization"),
    "local": ({"type": "openai-compatible"}, "/v1/chat/completions", None),
}


@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_two_llm_agents_in_sequence(
    client: Client, llm_server: FakeLLM, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    table, path, key_header = PROVIDERS[provider]
    kind = table.get("type", provider)
    config = llm_flow(provider, llm_server.url(kind), llm={"temperature": 0.2, "max_tokens": 50},
                      **table)  # fmt: skip
    assert "sk-test-123" not in config.model_dump_json()  # never in the workflow input
    async with flow_runner(client, config) as runner:
        result = await runner.run({"message": "hello", "keep": 1})
    assert result.status == "completed"
    first = "You write.| hello"
    second = f"You criticise.| {first}"
    assert result.state.data == {"message": second, "writer": first, "critic": second, "keep": 1}
    assert [(r.agent, r.attempt) for r in result.results] == [("writer", 1), ("critic", 1)]

    assert [r["path"] for r in llm_server.requests] == [path, path]
    writer, critic = llm_server.requests
    assert writer["model"] == ("gemma-deploy" if provider == "azure" else "gemma3:1b")
    notices = [r.getMessage() for r in caplog.records if r.name == "agentflow.llm"]
    if provider == "anthropic":  # the current API version takes no sampling settings
        assert "temperature" not in writer
        for agent in ("writer", "critic"):  # once each, naming agent, model, setting and fix
            [line] = [n for n in notices if n.startswith(f"agent {agent!r}")]
            assert "model 'gemma3:1b' (anthropic)" in line and "['temperature']" in line
            assert "anthropic-version: 2023-06-01" in line
    else:
        assert writer["temperature"] == 0.2
        assert notices == []
    assert 50 in (writer.get("max_tokens"), writer.get("max_completion_tokens"))
    if key_header:
        assert key_header in writer["headers"] and "sk-test-123" in writer["headers"][key_header]
    if provider == "anthropic":
        assert writer["system"][0]["text"] == "You write."
    else:
        assert writer["messages"] == [
            {"role": "system", "content": "You write."},
            {"role": "user", "content": "hello"},
        ]
        assert critic["messages"][1] == {"role": "user", "content": first}
    # Usage: every request's tokens, on each agent and summed for the run.
    usages = [(r.usage.input_tokens, r.usage.output_tokens, r.usage.requests)
              for r in result.results if r.usage]  # fmt: skip
    assert usages == [(5, 3, 1), (5, 3, 1)]
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (10, 6)


async def test_state_without_message_is_sent_as_json(client: Client, llm_server: FakeLLM) -> None:
    config = llm_flow("openai", llm_server.url("openai"), api_key=KEY)
    async with flow_runner(client, config) as runner:
        await runner.run({"topic": "rivers"})
    assert json.loads(llm_server.requests[0]["messages"][1]["content"]) == {"topic": "rivers"}


async def test_missing_variable_fails_at_once_naming_it(
    client: Client, llm_server: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_VAR, raising=False)
    config = llm_flow("openai", llm_server.url("openai"), api_key=KEY)
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await runner.run({"message": "hi"})
    failed = raised.value.result.results
    assert [(r.agent, r.attempt, r.error_type) for r in failed] == [("writer", 1, "LLMConfigError")]
    assert f"agent 'writer': environment variable {KEY_VAR!r}" in (failed[0].error or "")
    assert "is not set on this worker" in (failed[0].error or "")
    assert llm_server.requests == []


@pytest.mark.parametrize("status", [503, 429])
async def test_retryable_status_is_retried(
    client: Client, llm_server: FakeLLM, status: int
) -> None:
    llm_server.script = [Raw(status, '{"error": "overloaded"}')]
    config = llm_flow("ollama", llm_server.url("ollama"))
    async with flow_runner(client, config) as runner:
        result = await runner.run({"message": "hello"})
    assert [(r.agent, r.attempt) for r in result.results] == [("writer", 2), ("critic", 1)]
    assert len(llm_server.requests) == 3  # one attempt per activity attempt: no SDK retries
    assert result.state.data["writer"] == "You write.| hello"


async def test_a_429_with_retry_after_is_retried_no_sooner_than_asked(
    client: Client, llm_server: FakeLLM
) -> None:
    """The retry policy's first interval is 0.05 s: the next attempt waits the 2 s the
    provider asked for (Temporal's next_retry_delay on the failure)."""
    llm_server.script = [Raw(429, '{"error": "slow down"}', headers={"Retry-After": "2"})]
    config = llm_flow("openai", llm_server.url("openai"), api_key=KEY)
    async with flow_runner(client, config) as runner:
        result = await runner.run({"message": "hello"})
    assert [(r.agent, r.attempt) for r in result.results] == [("writer", 2), ("critic", 1)]
    first, second = llm_server.received[:2]
    assert second - first >= 1.9  # a lower bound (what was asked), not a speed limit


@pytest.mark.parametrize(
    ("provider", "answer", "expected"),
    [
        ("openai", Raw(401, '{"error": {"message": "Incorrect API key"}}'),
         "agent 'writer': openai answered HTTP 401: Incorrect API key"),
        ("ollama", Raw(404, '{"error": "model not found, try pulling it"}'),
         "agent 'writer': ollama answered HTTP 404: model not found, try pulling it"),
        ("openai", Raw(200, "<html>not an API</html>"),
         "agent 'writer': openai gave an unusable reply"),
        ("openai", Raw(200, '{"choices": []}'), "agent 'writer': openai gave an unusable reply"),
    ],
)  # fmt: skip
async def test_client_error_or_unusable_reply_fails_at_once(
    client: Client, llm_server: FakeLLM, provider: str, answer: Raw, expected: str
) -> None:
    llm_server.script = [answer]
    config = llm_flow(provider, llm_server.url(provider), retry_attempts=3, api_key=KEY)
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as info:
            await runner.run({"message": "hello"})
    assert len(llm_server.requests) == 1
    failed = info.value.result
    assert [(r.agent, r.status, r.attempt) for r in failed.results] == [("writer", "failed", 1)]
    assert expected in (failed.results[0].error or "")


async def test_unreachable_server_is_retried_then_fails(client: Client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        config = llm_flow("ollama", f"http://127.0.0.1:{port}", retry_attempts=1)
        async with flow_runner(client, config) as runner:
            with pytest.raises(FlowFailedError) as info:
                await runner.run({"message": "hello"})
    result = info.value.result.results[0]
    assert (result.agent, result.status, result.attempt) == ("writer", "failed", 2)
    assert "agent 'writer': ollama cannot be reached" in (result.error or "")


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "rank": {"type": "integer", "minimum": 1}},
    "required": ["city", "rank"],
}


async def test_output_schema_reply_is_validated_data_after_the_model_retries(
    client: Client, llm_server: FakeLLM
) -> None:
    agents = {
        "ranker": {"system_prompt": "Rank.", "output_schema": SCHEMA},
        "summary": {"system_prompt": "Sum up.", "output_schema": "tests.llm_tools:Summary"},
    }
    config = llm_flow("openai", llm_server.url("openai"), agents=agents, api_key=KEY)
    llm_server.script = [
        Calls([("final_result", {"city": "Oslo", "rank": 0})]),  # rank below its minimum
        Calls([("final_result", {"city": "Oslo", "rank": 2})]),
        Calls([("final_result", {"title": "T", "points": ["a", "b"]})]),
    ]
    async with flow_runner(client, config) as runner:
        result = await runner.run({"message": "cities"})
    assert result.state.data["ranker"] == {"city": "Oslo", "rank": 2}
    assert result.state.data["summary"] == {"title": "T", "points": ["a", "b"]}
    # The reason went back to the model (its own retry, within the one activity attempt).
    retry = llm_server.requests[1]["messages"][-1]
    assert retry["role"] == "tool" and "rank" in retry["content"]
    assert [(r.agent, r.attempt, r.usage and r.usage.requests) for r in result.results] == [
        ("ranker", 1, 2), ("summary", 1, 1)
    ]  # fmt: skip

    # Replies that never fit: the agent fails, named, without a Temporal retry.
    llm_server.reset()
    llm_server.script = [Calls([("final_result", {"city": "Oslo"})])] * 3
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as info:
            await runner.run({"message": "cities"})
    failed = info.value.result.results[-1]
    assert (failed.agent, failed.attempt, failed.error_type) == ("ranker", 1, "LLMBadResponse")
    assert "agent 'ranker'" in (failed.error or "") and len(llm_server.requests) == 3


async def test_token_budget_stops_the_run(client: Client, llm_server: FakeLLM) -> None:
    # Every request uses 8 tokens: the writer stays within 10, the critic takes it to 16.
    config = llm_flow("openai", llm_server.url("openai"), api_key=KEY,
                      orchestration={"max_tokens_per_run": 10})  # fmt: skip
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as info:
            await runner.run({"message": "hello"})
    result = info.value.result
    assert [(r.agent, r.status) for r in result.results] == [
        ("writer", "completed"), ("critic", "failed")
    ]  # fmt: skip
    assert result.results[1].error_type == "TokenBudgetExceeded"
    assert "agent 'critic' took the run to 16 tokens, over its budget of 10" in (result.error or "")
    assert result.usage is not None and result.usage.total_tokens == 16


async def test_usage_command_for_a_run_and_a_session(
    client: Client, llm_server: FakeLLM, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = llm_flow("ollama", llm_server.url("ollama"))
    (cli_env / "agentflow.toml").write_text(_toml(config))  # --session needs the flow's name
    session = f"user-{uuid.uuid4().hex[:6]}"
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"message": "hi"})
        await handle.result()
        for text in ("one", "two"):
            emitted = await runner.emit({"message": text}, session_id=session, wait=True)
            assert (await emitted.outcome()).status == "completed"
        code, out, _ = await cli(capsys, "usage", "--session", session, "--json")
    assert code == 0
    assert json.loads(out)["usage"] == {"input_tokens": 20, "output_tokens": 12, "requests": 4,
                                        "tool_calls": 0, "total_tokens": 32}  # fmt: skip
    code, out, _ = await cli(capsys, "usage", handle.workflow_id, "--json")
    body = json.loads(out)
    assert (code, body["status"], body["usage"]["total_tokens"]) == (0, "completed", 16)
    assert [(a["agent"], a["requests"]) for a in body["agents"]] == [("writer", 1), ("critic", 1)]
    code, out, _ = await cli(capsys, "usage", handle.workflow_id)
    assert code == 0 and out.splitlines()[-1].split() == ["total", "2", "0", "10", "6"]
    code, _, err = await cli(capsys, "usage")
    assert code == 2 and "give a workflow/run id, or --session ID" in err


def _toml(config: FlowConfig) -> str:
    """Enough of ``config`` as TOML for the CLI to know the flow (its name)."""
    return (
        f'[agent_flow]\nname = "{config.name}"\n[llm]\nprovider = "ollama"\nmodel = "m"\n'
        '[orchestration]\nmode = "sequential"\nsequential_agents = ["writer"]\n'
        '[agents.writer]\nsystem_prompt = "You write."\n'
    )


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ({"tools": ["tests.llm_tools:nothing"]},
         "agents.writer.tools[0]: module 'tests.llm_tools' has no attribute 'nothing'"),
        ({"tools": ["tests.no_such_module:f"]},
         "agents.writer.tools[0]: cannot import module 'tests.no_such_module' for tool"),
        ({"output_schema": "tests.llm_tools:add"},
         "agents.writer.output_schema: 'tests.llm_tools:add' is not a pydantic model"),
    ],
)  # fmt: skip
def test_unusable_tool_or_output_model_is_refused_at_load(
    agent: dict[str, Any], expected: str
) -> None:
    agents = {"writer": {"system_prompt": "You write.", **agent}}
    with pytest.raises(ConfigError) as raised:
        llm_flow("ollama", "http://127.0.0.1:9", agents=agents)
    assert expected in str(raised.value)
