"""Embeddings of agent memory: the dummy vectors (deterministic, near for texts sharing
words), the provider chosen from ``[llm]``, and OpenAI, Ollama and Azure against a local server
speaking their wire format (tests/embeddings_server.py), with each failure mapped to
MemoryUnavailable (retry) or MemorySetupError (fix the settings)."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from agentflow.config import FlowConfig, parse_config
from agentflow.memory import embedding
from agentflow.memory.dummy import DummyEmbedder, blank_vector, dummy_vector
from agentflow.memory.embedding import RemoteEmbedder, embedder_for
from agentflow.memory.errors import MemorySetupError, MemoryUnavailable
from agentflow.memory.ranking import cosine
from tests.embeddings_server import FakeEmbeddings, Hold, Raw, Vectors, error_body, running_fake

ENV = {"EMBED_KEY": "sk-embed-1"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEmbeddings]:
    yield from running_fake()


@pytest.fixture
def server(fake: FakeEmbeddings) -> FakeEmbeddings:
    fake.reset()
    embedding._cache.clear()
    return fake


def config(embed: dict[str, Any] | None = None, **tables: Any) -> FlowConfig:
    """A flow with an in-process memory store and these embedding settings and tables."""
    memory = {"provider": "memory", "embedding": embed or {}}
    memory |= tables.pop("agent_memory", {})
    raw = {
        "agent_flow": {"name": "memory-embedding", **tables.pop("agent_flow", {})},
        "orchestration": {"mode": "sequential", "sequential_agents": ["a"]},
        "agents": {"a": {"handler": "tests.agents:append"}},
        "agent_memory": memory,
        **tables,
    }
    return parse_config(raw)


def compatible(fake: FakeEmbeddings, **embed: Any) -> FlowConfig:
    settings = {"provider": "openai-compatible", "base_url": f"{fake.root}/v1",
                "api_key": "${EMBED_KEY}", **embed}  # fmt: skip
    return config(settings)


async def test_dummy_vectors_are_unit_length_and_the_same_in_every_process() -> None:
    text = "Temporal retries activities; the workflow replays."
    vector = dummy_vector(text, 64)
    assert len(vector) == 64
    assert math.isclose(sum(v * v for v in vector), 1.0)
    assert dummy_vector(text.upper(), 64) == vector  # words are casefolded
    code = f"from agentflow.memory.dummy import dummy_vector; print(dummy_vector({text!r}, 64))"
    for seed in ("1", "2"):  # Python's own hash() would differ between these
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": seed})  # fmt: skip
        assert out.stdout.strip() == str(vector)


async def test_dummy_vectors_of_texts_sharing_words_are_near() -> None:
    embedder = embedder_for(config({"provider": "dummy"}))
    assert isinstance(embedder, DummyEmbedder)
    assert (embedder.provider, embedder.model, embedder.dimensions) == ("dummy", "dummy", 1536)
    query, near, far = await embedder.embed([
        "how does the worker retry a failed activity",
        "A failed activity is retried by the worker with backoff.",
        "Bananas ripen faster next to apples.",
    ])  # fmt: skip
    assert cosine(query, near) > 0.4
    assert abs(cosine(query, far)) < 0.15
    assert cosine(query, near) > cosine(query, far) + 0.3


async def test_a_text_without_words_gets_a_fixed_unit_vector() -> None:
    blank = blank_vector(8)
    assert math.isclose(sum(v * v for v in blank), 1.0)
    assert dummy_vector("", 8) == dummy_vector("  ?! ", 8) == blank


def test_provider_defaults_to_the_flows_llm_provider_when_it_has_embeddings() -> None:
    assert isinstance(embedder_for(config()), DummyEmbedder)  # no [llm]: dummy
    anthropic = config(llm={"provider": "anthropic", "model": "claude"})
    assert isinstance(embedder_for(anthropic), DummyEmbedder)
    ollama = embedder_for(config(llm={"provider": "ollama", "model": "llama3"}))
    assert isinstance(ollama, RemoteEmbedder)
    assert (ollama.provider, ollama.model) == ("ollama", "nomic-embed-text")
    assert ollama.base_url == "http://localhost:11434/v1"
    named = config(agent_flow={"provider": "local"},
                   providers={"local": {"type": "openai-compatible", "model": "qwen",
                                        "base_url": "http://vllm:8000/v1",
                                        "api_key": "${EMBED_KEY}"}})  # fmt: skip
    local = embedder_for(named, ENV)
    assert isinstance(local, RemoteEmbedder)
    assert (local.provider, local.base_url, local.api_key) == (
        "openai-compatible", "http://vllm:8000/v1", "sk-embed-1")  # fmt: skip
    assert "sk-embed-1" not in repr(local)
    openai = embedder_for(config(llm={"provider": "openai", "model": "gpt-4o"}), ENV | {
        "OPENAI_API_KEY": "sk-o"})  # fmt: skip
    assert isinstance(openai, RemoteEmbedder)
    assert (openai.base_url, openai.api_key, openai.model) == (
        "https://api.openai.com/v1", "sk-o", "text-embedding-3-small")  # fmt: skip


def test_an_unset_variable_is_a_setup_error_naming_it() -> None:
    with pytest.raises(MemorySetupError, match="'OPENAI_API_KEY' \\(api_key of the openai"):
        embedder_for(config({"provider": "openai"}), {})
    with pytest.raises(MemorySetupError, match="'AZURE_OPENAI_ENDPOINT' \\(base_url"):
        embedder_for(config({"provider": "azure"}), {"AZURE_OPENAI_API_KEY": "k"})
    with pytest.raises(MemorySetupError, match="needs base_url"):
        embedder_for(config({"provider": "openai-compatible"}), {})


async def test_openai_compatible_sends_batches_with_the_key(server: FakeEmbeddings) -> None:
    embedder = embedder_for(compatible(server, max_batch_size=2), ENV)
    texts = ["alpha beta", "beta gamma", "gamma delta", "delta alpha", "epsilon"]
    vectors = await embedder.embed(texts)
    assert [len(r["input"]) for r in server.requests] == [2, 2, 1]
    first = server.requests[0]
    assert first["path"] == "/v1/embeddings"
    assert first["headers"]["authorization"] == "Bearer sk-embed-1"
    assert (first["model"], first["dimensions"]) == ("text-embedding-3-small", 1536)
    assert first["encoding_format"] == "base64"  # the SDK's default, decoded by it
    for text, vector in zip(texts, vectors, strict=True):
        expected = dummy_vector(text, 1536)
        assert max(abs(a - b) for a, b in zip(vector, expected, strict=True)) < 1e-6


async def test_vectors_are_cached_and_the_empty_text_is_not_sent(server: FakeEmbeddings) -> None:
    embedder = embedder_for(compatible(server), ENV)
    first = await embedder.embed(["cached words", ""])
    again = await embedder.embed(["cached words", "cached words"])
    assert [r["input"] for r in server.requests] == [["cached words"]]
    assert again == [first[0], first[0]] and first[1] == blank_vector(1536)
    uncached = embedder_for(compatible(server, cache_embeddings=False), ENV)
    await uncached.embed(["cached words"])
    assert len(server.requests) == 2


async def test_the_cache_forgets_the_least_recently_used_first(
    server: FakeEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding, "CACHE_ENTRIES", 2)
    embedder = embedder_for(compatible(server), ENV)
    for text in ("one", "two", "one", "three", "one", "two"):
        await embedder.embed([text])
    # "two" was the least recently used when "three" came in: asked for again.
    assert [r["input"] for r in server.requests] == [["one"], ["two"], ["three"], ["two"]]


async def test_ollama_is_reached_through_its_openai_api(server: FakeEmbeddings) -> None:
    flow = config(llm={"provider": "ollama", "model": "llama3"}, agent_memory={"dimensions": 768},
                  providers={"ollama": {"base_url": server.root}})  # fmt: skip
    server.script.append(Vectors(768))  # nomic-embed-text's own size
    [vector] = await embedder_for(flow, {}).embed(["local model"])
    [request] = server.requests
    assert request["path"] == "/v1/embeddings"
    assert request["model"] == "nomic-embed-text" and "dimensions" not in request
    assert request["headers"]["authorization"] == "Bearer not-needed"
    assert len(vector) == 768


async def test_azure_calls_the_deployment_with_its_api_version(server: FakeEmbeddings) -> None:
    flow = config({"provider": "azure", "model": "embed-small"},
                  providers={"azure": {"endpoint": server.root, "api_key": "${EMBED_KEY}",
                                       "deployment": "gpt-4o-chat"}})  # fmt: skip
    await embedder_for(flow, ENV).embed(["azure text"])
    [request] = server.requests
    assert request["path"] == "/openai/deployments/embed-small/embeddings"
    assert request["query"]["api-version"] == ["2024-10-21"]
    assert request["headers"]["api-key"] == "sk-embed-1"


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (Raw(500, error_body("boom", "server_error")), MemoryUnavailable,
         r"at 127\.0\.0\.1:\d+ answered HTTP 500: boom$"),
        (Raw(429, error_body("slow down"), {"Retry-After": "7"}), MemoryUnavailable,
         r"HTTP 429 \(Retry-After: 7\): slow down"),
        (Raw(401, error_body("Incorrect API key provided")), MemorySetupError,
         r"refused the request \(HTTP 401\): Incorrect API key provided \(check api_key\)"),
        (Raw(404, error_body("The model `nope` does not exist")), MemorySetupError,
         r"HTTP 404\): The model `nope` does not exist \(is model 'text-embedding-3-small'"),
        (Raw(400, error_body("'$.input' is invalid")), MemorySetupError, r"HTTP 400\)"),
        (Raw(200, "<html>not an API</html>"), MemorySetupError, r"is base_url right\?"),
    ],
)  # fmt: skip
async def test_failures_map_to_retry_or_fix(
    server: FakeEmbeddings, reply: Raw, error: type[Exception], message: str
) -> None:
    server.script.append(reply)
    with pytest.raises(error, match=message):
        await embedder_for(compatible(server), ENV).embed(["x"])
    assert len(server.requests) == 1  # Temporal retries, not the SDK


async def test_a_silent_or_absent_server_is_unavailable(server: FakeEmbeddings) -> None:
    server.script.append(Hold())
    slow = embedder_for(compatible(server, timeout_seconds=0.3), ENV)
    with pytest.raises(MemoryUnavailable, match=r"did not answer within 0\.3s"):
        await slow.embed(["x"])
    server.release.set()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    gone = config({"provider": "openai-compatible", "base_url": f"http://127.0.0.1:{port}/v1"})
    with pytest.raises(MemoryUnavailable, match=f"at 127.0.0.1:{port} cannot be reached"):
        await embedder_for(gone, {}).embed(["x"])


async def test_a_model_of_other_dimensions_is_a_setup_error(server: FakeEmbeddings) -> None:
    server.script.append(Vectors(768))
    with pytest.raises(MemorySetupError) as caught:
        await embedder_for(compatible(server), ENV).embed(["x"])
    assert str(caught.value) == (
        "embedding model text-embedding-3-small returned 768 dimensions; [agent_memory] "
        "dimensions = 1536 (set dimensions = 768 in [agent_memory], or use a model that "
        "returns 1536)"
    )
