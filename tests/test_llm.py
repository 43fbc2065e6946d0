"""LLM agents against a local server on 127.0.0.1 that speaks Ollama's and OpenAI's wire formats."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.client import Client

from agentflow.config import FlowConfig, parse_config
from agentflow.errors import FlowFailedError
from tests.conftest import REPO, flow_runner


class FakeLLM:
    """Answers ``POST /api/chat`` (Ollama) and ``POST /v1/chat/completions`` (OpenAI).

    Every request is recorded; ``script`` queues (status, body) answers, after which the
    server replies ``"<system prompt>| <user content>"`` in the format of the path asked.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                fake.requests.append({"path": self.path, "headers": dict(self.headers), **body})
                answer = fake.script.pop(0) if fake.script else (200, fake.reply(self.path, body))
                status, text = answer
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reply(self, path: str, body: dict[str, Any]) -> str:
        messages = body["messages"]
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        content = f"{system}| {messages[-1]['content']}"
        message = {"role": "assistant", "content": content}
        if path == "/api/chat":
            return json.dumps({
                "model": body["model"], "created_at": "2025-01-01T00:00:00Z", "message": message,
                "done_reason": "stop", "done": True, "total_duration": 1, "eval_count": 3,
            })  # fmt: skip
        if path == "/v1/chat/completions":
            return json.dumps({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1735689600,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            })  # fmt: skip
        return json.dumps({"error": f"no route {path}"})

    def url(self, provider: str) -> str:
        suffix = "/v1" if provider == "openai" else ""
        return f"http://127.0.0.1:{self.port}{suffix}"


@pytest.fixture
def llm_server() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        fake.thread.join()


def llm_flow(provider: str, base_url: str, retry_attempts: int = 2, **llm: Any) -> FlowConfig:
    """A sequential flow of two LLM agents, writer then critic."""
    raw = {
        "agent_flow": {"name": f"llm-{provider}"},
        "llm": {"provider": provider, "model": "gemma3:1b", "base_url": base_url, **llm},
        "orchestration": {
            "mode": "sequential",
            "timeout_seconds": 60,  # a worker that never runs the agents fails, not hangs
            "sequential_agents": ["writer", "critic"],
            "retry_attempts": retry_attempts,
            "retry": {"initial_interval_seconds": 0.05},
        },
        "agents": {
            "writer": {"role": "writer", "system_prompt": "You write."},
            "critic": {"role": "critic", "system_prompt": "You criticise."},
        },
    }
    return parse_config(raw, base_dir=REPO, check_handlers=True)


@pytest.mark.parametrize("provider", ["ollama", "openai"])
async def test_two_llm_agents_in_sequence(
    client: Client, llm_server: FakeLLM, provider: str
) -> None:
    config = llm_flow(provider, llm_server.url(provider), temperature=0.2, max_tokens=50)
    async with flow_runner(client, config) as runner:
        result = await runner.run({"message": "hello", "keep": 1})
    assert result.status == "completed"
    first = "You write.| hello"
    second = f"You criticise.| {first}"
    assert result.state.data == {"message": second, "writer": first, "critic": second, "keep": 1}
    assert [(r.agent, r.attempt) for r in result.results] == [("writer", 1), ("critic", 1)]

    path = "/api/chat" if provider == "ollama" else "/v1/chat/completions"
    assert [r["path"] for r in llm_server.requests] == [path, path]
    writer, critic = llm_server.requests
    assert writer["model"] == "gemma3:1b"
    assert writer["messages"] == [
        {"role": "system", "content": "You write."},
        {"role": "user", "content": "hello"},
    ]
    assert critic["messages"][1] == {"role": "user", "content": first}
    if provider == "ollama":
        assert writer["stream"] is False
        assert writer["options"] == {"temperature": 0.2, "num_predict": 50}
    else:
        assert (writer["temperature"], writer["max_tokens"]) == (0.2, 50)
        assert writer.get("stream", False) is False


async def test_state_without_message_is_sent_as_json(client: Client, llm_server: FakeLLM) -> None:
    config = llm_flow("openai", llm_server.url("openai"))
    async with flow_runner(client, config) as runner:
        await runner.run({"topic": "rivers"})
    assert json.loads(llm_server.requests[0]["messages"][1]["content"]) == {"topic": "rivers"}


@pytest.mark.parametrize("provider", ["ollama", "openai"])
async def test_api_key_comes_from_the_named_env_var(
    client: Client, llm_server: FakeLLM, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    monkeypatch.setenv("AGENTFLOW_TEST_LLM_KEY", "sk-test-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    config = llm_flow(provider, llm_server.url(provider), api_key_env="AGENTFLOW_TEST_LLM_KEY")
    assert "sk-test-123" not in config.model_dump_json()  # never in the workflow input
    async with flow_runner(client, config) as runner:
        await runner.run({"message": "hi"})
    assert [r["headers"].get("Authorization") for r in llm_server.requests] == [
        "Bearer sk-test-123"
    ] * 2


async def test_no_key_no_authorization_header(
    client: Client, llm_server: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = llm_flow("openai", llm_server.url("openai"))
    async with flow_runner(client, config) as runner:
        await runner.run({"message": "hi"})
    assert all("Authorization" not in r["headers"] for r in llm_server.requests)


async def test_named_key_variable_missing_fails_at_once(
    client: Client, llm_server: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENTFLOW_TEST_LLM_KEY", raising=False)
    config = llm_flow("openai", llm_server.url("openai"), api_key_env="AGENTFLOW_TEST_LLM_KEY")
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await runner.run({"message": "hi"})
    assert "environment variable 'AGENTFLOW_TEST_LLM_KEY' (llm.api_key_env) is not set" in str(
        raised.value
    )
    assert [(r.agent, r.attempt) for r in raised.value.result.results] == [("writer", 1)]
    assert llm_server.requests == []


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_retryable_status_is_retried(
    client: Client, llm_server: FakeLLM, status: int
) -> None:
    llm_server.script = [(status, '{"error": "overloaded"}')]
    config = llm_flow("ollama", llm_server.url("ollama"))
    async with flow_runner(client, config) as runner:
        result = await runner.run({"message": "hello"})
    assert result.status == "completed"
    assert [(r.agent, r.attempt) for r in result.results] == [("writer", 2), ("critic", 1)]
    assert len(llm_server.requests) == 3
    assert result.state.data["writer"] == "You write.| hello"


@pytest.mark.parametrize(
    ("provider", "status", "body", "detail"),
    [
        ("openai", 400, '{"error": {"message": "bad request"}}', "bad request"),
        ("openai", 401, '{"error": {"message": "Incorrect API key"}}', "Incorrect API key"),
        ("ollama", 404, '{"error": "model not found, try pulling it"}', "try pulling it"),
    ],
)
async def test_client_error_fails_at_once(
    client: Client, llm_server: FakeLLM, provider: str, status: int, body: str, detail: str
) -> None:
    llm_server.script = [(status, body)]
    config = llm_flow(provider, llm_server.url(provider), retry_attempts=3)
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as info:
            await runner.run({"message": "hello"})
    assert len(llm_server.requests) == 1
    failed = info.value.result
    assert failed.status == "failed"
    assert [(r.agent, r.status, r.attempt) for r in failed.results] == [("writer", "failed", 1)]
    error = failed.results[0].error or ""
    assert f"agent 'writer': {provider} answered HTTP {status}" in error
    assert detail in error  # the server's own explanation is kept
    assert "'writer'" in str(info.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<html>not an API</html>", "answered with invalid JSON"),
        ('{"choices": []}', "reply has no message content"),
    ],
)
async def test_unusable_reply_fails_at_once(
    client: Client, llm_server: FakeLLM, body: str, expected: str
) -> None:
    llm_server.script = [(200, body)]
    config = llm_flow("openai", llm_server.url("openai"), retry_attempts=3)
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as info:
            await runner.run({"message": "hello"})
    assert len(llm_server.requests) == 1
    result = info.value.result.results[0]
    assert (result.agent, result.attempt) == ("writer", 1)
    assert f"agent 'writer': openai {expected}" in (result.error or "")


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
    assert f"cannot reach ollama at http://127.0.0.1:{port}/api/chat" in (result.error or "")
