"""Embeddings: the vectors memory stores and searches with, from ``[agent_memory.embedding]``.

``provider`` left out means the flow's LLM provider kind when that kind has embeddings
(openai, azure, ollama, openai-compatible), else ``dummy``. A ``[providers.NAME]`` table of
that kind supplies ``base_url``, ``api_key`` and ``api_version`` the embedding table leaves
out (AgenticGoKit reads the same variables: OPENAI_API_KEY, AZURE_OPENAI_*). On Azure the
model is the embedding deployment's name: the provider table's ``deployment`` names a chat
model, which cannot embed. ``${VAR}`` is read here, on the worker, never in workflow code.

Remote providers are called through the openai SDK's embeddings endpoint (Ollama's OpenAI-
compatible ``/v1`` API too), one attempt per call (``max_retries = 0``: Temporal owns
retries), so failures map precisely: a network error, a timeout, 408/409/425/429 or a 5xx is
MemoryUnavailable (retry); any other refusal (a bad key, an unknown model) and a reply of
the wrong dimensions are MemorySetupError (a retry cannot help).

``dummy`` needs no service (agentflow/memory/dummy.py).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from agentflow.config.flow import FlowConfig
from agentflow.config.llm import (
    DEFAULT_API_KEYS,
    DEFAULT_AZURE_API_VERSION,
    DEFAULT_BASE_URLS,
    MissingVariable,
    ProviderConfig,
    expand_env,
    provider_kind,
    provider_name,
)
from agentflow.config.memory import DEFAULT_EMBEDDING_MODELS
from agentflow.errors import ConfigError, retry_after_seconds
from agentflow.limits import shorten
from agentflow.memory.dummy import DummyEmbedder, blank_vector
from agentflow.memory.errors import MemorySetupError, MemoryUnavailable

if TYPE_CHECKING:
    from openai import APIStatusError, AsyncOpenAI

REMOTE_KINDS = ("openai", "azure", "ollama", "openai-compatible")
OPENAI_URL = "https://api.openai.com/v1"
# The key sent to servers that need none (a local Ollama, vLLM ...): the SDK wants one.
NO_KEY = "not-needed"
# Vectors kept in this process by (provider, model, base_url, dimensions, text).
CACHE_ENTRIES = 10_000
# Statuses worth retrying besides 5xx (as for chat models: agentflow/activities/llm_models.py).
RETRYABLE_STATUS = {408, 409, 425, 429}
SHOWN_CHARS = 400


class Embedder(Protocol):
    """Turns texts into vectors of ``dimensions`` values, one per text, in order. ``embed``
    raises MemoryUnavailable (try again later) or MemorySetupError (fix the settings)."""

    provider: str
    model: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


_cache: OrderedDict[tuple[str, ...], list[float]] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass
class RemoteEmbedder:
    """An embeddings API reached with the openai SDK (OpenAI, Azure, Ollama, compatible)."""

    provider: str  # the kind: one of REMOTE_KINDS
    model: str
    dimensions: int
    base_url: str
    api_key: str | None = field(repr=False)  # a secret: kept out of logs
    api_version: str | None
    max_batch_size: int
    timeout_seconds: float
    cache: bool

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        found = {text: vector for text in set(texts) if (vector := self._cached(text))}
        todo = [text for text in dict.fromkeys(texts) if text not in found and text]
        if "" in texts:  # the API refuses an empty input
            found[""] = blank_vector(self.dimensions)
        if todo:
            async with self._client() as client:
                for at in range(0, len(todo), self.max_batch_size):
                    part = todo[at : at + self.max_batch_size]
                    vectors = await self._request(client, part)
                    for text, vector in zip(part, vectors, strict=True):
                        found[text] = vector
                        self._keep(text, vector)
        return [list(found[text]) for text in texts]

    def _client(self) -> AsyncOpenAI:
        from openai import AsyncAzureOpenAI, AsyncOpenAI

        key = self.api_key or NO_KEY
        if self.provider == "azure":  # the SDK puts /openai/deployments/{model} in the URL
            return AsyncAzureOpenAI(azure_endpoint=self.base_url, api_version=self.api_version,
                                    api_key=key, max_retries=0,
                                    timeout=self.timeout_seconds)  # fmt: skip
        return AsyncOpenAI(base_url=self.base_url, api_key=key, max_retries=0,
                           timeout=self.timeout_seconds)  # fmt: skip

    async def _request(self, client: AsyncOpenAI, texts: list[str]) -> list[list[float]]:
        import openai

        where = f"{self.provider} embeddings at {urlsplit(self.base_url).netloc}"
        # OpenAI's text-embedding-3 models shorten their vectors on request; others refuse it.
        size = self.dimensions if self.model.startswith("text-embedding-3") else openai.omit
        try:
            reply = await client.embeddings.create(input=texts, model=self.model, dimensions=size)
        except openai.APITimeoutError:
            raise MemoryUnavailable(
                f"{where} did not answer within {self.timeout_seconds:g}s "
                "([agent_memory.embedding] timeout_seconds)"
            ) from None
        except openai.APIConnectionError as err:
            why = err.__cause__ or err
            raise MemoryUnavailable(f"{where} cannot be reached: {why}") from None
        except openai.APIStatusError as err:
            raise _status_error(where, self.model, err) from None
        except (openai.APIResponseValidationError, ValueError) as err:
            raise MemorySetupError(
                f"{where} gave a reply that is not an embeddings response "
                f"({shorten(str(err), SHOWN_CHARS)}); is base_url right? ({self.base_url})"
            ) from None
        data = sorted(reply.data, key=lambda item: item.index or 0)
        if len(data) != len(texts):
            raise MemorySetupError(
                f"{where} returned {len(data)} vectors for {len(texts)} texts (model "
                f"{self.model!r}); is base_url an OpenAI-compatible embeddings API?"
            )
        for item in data:
            if len(item.embedding) != self.dimensions:
                raise MemorySetupError(
                    f"embedding model {self.model} returned {len(item.embedding)} dimensions; "
                    f"[agent_memory] dimensions = {self.dimensions} (set dimensions = "
                    f"{len(item.embedding)} in [agent_memory], or use a model that returns "
                    f"{self.dimensions})"
                )
        return [list(item.embedding) for item in data]

    def _key(self, text: str) -> tuple[str, ...]:
        return (self.provider, self.model, self.base_url, str(self.dimensions), text)

    def _cached(self, text: str) -> list[float] | None:
        if not self.cache:
            return None
        with _cache_lock:
            vector = _cache.get(self._key(text))
            if vector is not None:
                _cache.move_to_end(self._key(text))
            return vector

    def _keep(self, text: str, vector: list[float]) -> None:
        if self.cache:
            with _cache_lock:
                _cache[self._key(text)] = vector
                while len(_cache) > CACHE_ENTRIES:
                    _cache.popitem(last=False)


def _status_error(where: str, model: str, err: APIStatusError) -> Exception:
    status = err.status_code
    message = shorten(" ".join(_server_message(err.body).split()), SHOWN_CHARS)
    if status in RETRYABLE_STATUS or status >= 500:
        headers = err.response.headers
        wait = headers.get("retry-after") or (
            f"{headers['retry-after-ms']}ms" if "retry-after-ms" in headers else None
        )
        after = f" (Retry-After: {wait})" if wait else ""
        return MemoryUnavailable(f"{where} answered HTTP {status}{after}: {message}",
                                 retry_after=retry_after_seconds(headers))  # fmt: skip
    hint = {401: "check api_key", 403: "check api_key", 404: f"is model {model!r} served there?"}
    more = f" ({hint[status]})" if status in hint else ""
    return MemorySetupError(f"{where} refused the request (HTTP {status}): {message}{more}")


def _server_message(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        return str(error)
    return str(body)


def embedder_for(config: FlowConfig, environ: Mapping[str, str] | None = None) -> Embedder:
    """The embedder of the flow's ``[agent_memory]``. Raises MemorySetupError for settings
    that cannot work (an unset ``${VAR}``, an openai-compatible provider without base_url)."""
    memory = config.agent_memory
    if memory is None or not memory.enabled:
        raise ConfigError(f"flow {config.name!r} has no agent memory: add an [agent_memory] table")
    settings = memory.embedding
    kind, table, use_llm = _chosen(config)
    if kind == "dummy":
        return DummyEmbedder(dimensions=memory.dimensions, model=settings.model or "dummy")
    llm = config.llm if use_llm else None
    env = os.environ if environ is None else environ

    def value(key: str, template: str | None) -> str | None:
        try:
            return None if template is None else expand_env(template, env)
        except MissingVariable as missing:
            raise MemorySetupError(
                f"environment variable {missing.name!r} ({key} of the {kind} embeddings) is "
                "not set on this worker; set it, or set [agent_memory.embedding] " + key
            ) from None

    base_url = value("base_url", settings.base_url or table.base_url
                     or (llm and llm.base_url) or DEFAULT_BASE_URLS.get(kind))  # fmt: skip
    api_key = value("api_key", settings.api_key or table.api_key
                    or (llm and llm.key_template()) or DEFAULT_API_KEYS.get(kind))  # fmt: skip
    model = value("model", settings.model or DEFAULT_EMBEDDING_MODELS[kind]) or ""
    if kind == "ollama":  # AgenticGoKit names Ollama's root; its OpenAI API lives under /v1
        root = (base_url or "").rstrip("/")
        base_url = root if root.endswith("/v1") else f"{root}/v1"
    if not base_url and kind != "openai":
        raise MemorySetupError(
            f"[agent_memory.embedding] provider = {kind!r} needs base_url (the server's "
            "OpenAI-compatible URL, like http://localhost:8000/v1)"
        )
    version = table.api_version or DEFAULT_AZURE_API_VERSION
    return RemoteEmbedder(
        provider=kind, model=model, dimensions=memory.dimensions,
        base_url=base_url or OPENAI_URL, api_key=api_key,
        api_version=value("api_version", version) if kind == "azure" else None,
        max_batch_size=settings.max_batch_size, timeout_seconds=settings.timeout_seconds,
        cache=settings.cache_embeddings,
    )  # fmt: skip


def _chosen(config: FlowConfig) -> tuple[str, ProviderConfig, bool]:
    """The embedding provider kind, the ``[providers]`` table that supplies its connection,
    and whether ``[llm]``'s base_url and api_key apply (it names that same provider)."""
    name = provider_name(config.llm, config.agent_flow.provider, None)
    flow_table = config.providers.get(name) if name else None
    flow_kind = (flow_table.type if flow_table else None) or provider_kind(name)
    wanted = config.agent_memory.embedding.provider if config.agent_memory else None
    kind = wanted or (flow_kind if flow_kind in REMOTE_KINDS else "dummy")
    if kind == flow_kind:
        return kind, flow_table or ProviderConfig(), config.llm is not None
    table = config.providers.get(kind)
    if table is None:
        typed = [t for t in config.providers.values() if t.type == kind]
        table = typed[0] if len(typed) == 1 else None
    return kind, table or ProviderConfig(), False
