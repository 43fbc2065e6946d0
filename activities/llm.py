"""LLM agents: an agent with a ``system_prompt`` and no ``handler`` asks the ``[llm]`` model.

Two wire formats: Ollama's ``/api/chat`` and OpenAI-compatible ``/chat/completions`` (OpenAI,
vLLM, llama.cpp server, LM Studio, …). The HTTP call makes one attempt; Temporal owns retries,
so status codes map to retryable (429, 5xx, network) or non-retryable (other 4xx, and
replies that are not the API's JSON) failures.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from concurrent.futures import Executor
from typing import Any

from temporalio.exceptions import ApplicationError

from agentflow.config import AgentConfig, LLMConfig
from agentflow.models import State

DEFAULT_BASE_URLS = {"ollama": "http://127.0.0.1:11434", "openai": "https://api.openai.com/v1"}
RETRYABLE_STATUS = {408, 409, 425, 429}


async def call_llm(
    agent: str, spec: AgentConfig, llm: LLMConfig, state: State, executor: Executor | None
) -> dict[str, Any]:
    """Ask the model; the reply is stored as ``data[agent]`` and ``data["message"]``."""
    url, body, headers = _request(agent, spec, llm, state)
    loop = asyncio.get_running_loop()
    reply = await loop.run_in_executor(executor, _post, agent, url, body, headers, llm)
    text = _reply_text(agent, llm.provider, reply)
    return {agent: text, "message": text}


def _request(
    agent: str, spec: AgentConfig, llm: LLMConfig, state: State
) -> tuple[str, dict[str, Any], dict[str, str]]:
    message = state.data.get("message")
    prompt = message if isinstance(message, str) else json.dumps(state.data, default=str)
    messages = [{"role": "user", "content": prompt}]
    if spec.system_prompt:
        messages.insert(0, {"role": "system", "content": spec.system_prompt})
    base = (llm.base_url or DEFAULT_BASE_URLS[llm.provider]).rstrip("/")
    headers = {"Content-Type": "application/json"}
    # Ollama needs no key locally, but does behind a proxy or on ollama.com.
    key_env = llm.api_key_env or ("OPENAI_API_KEY" if llm.provider == "openai" else None)
    key = os.environ.get(key_env) if key_env else None
    if llm.api_key_env and not key:
        # Named explicitly but missing on this worker: say so, rather than let the
        # provider answer 401 after a round trip (no retry can set the variable).
        raise ApplicationError(
            f"agent {agent!r}: environment variable {llm.api_key_env!r} (llm.api_key_env) "
            "is not set on this worker",
            type="LLMConfigError",
            non_retryable=True,
        )
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if llm.provider == "ollama":
        options: dict[str, Any] = {"temperature": llm.temperature}
        if llm.max_tokens:
            options["num_predict"] = llm.max_tokens
        body = {"model": llm.model, "messages": messages, "stream": False, "options": options}
        return f"{base}/api/chat", body, headers
    body = {"model": llm.model, "messages": messages, "temperature": llm.temperature}
    if llm.max_tokens:
        body["max_tokens"] = llm.max_tokens
    return f"{base}/chat/completions", body, headers


def _post(
    agent: str, url: str, body: dict[str, Any], headers: dict[str, str], llm: LLMConfig
) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=llm.timeout_seconds) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")[:500]
        retryable = err.code in RETRYABLE_STATUS or err.code >= 500
        raise ApplicationError(
            f"agent {agent!r}: {llm.provider} answered HTTP {err.code}: {detail}",
            type=f"LLMHTTP{err.code}",
            non_retryable=not retryable,
        ) from err
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise ApplicationError(
            f"agent {agent!r}: cannot reach {llm.provider} at {url}: {err}", type="LLMUnreachable"
        ) from err
    except json.JSONDecodeError as err:
        # A 200 that is not JSON is not an LLM API (often a base_url missing its path).
        raise ApplicationError(
            f"agent {agent!r}: {llm.provider} answered with invalid JSON: {err} "
            f"(is llm.base_url right? {url})",
            type="LLMBadResponse",
            non_retryable=True,
        ) from err


def _reply_text(agent: str, provider: str, reply: Any) -> str:
    try:
        if provider == "ollama":
            return str(reply["message"]["content"])
        return str(reply["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError) as err:
        raise ApplicationError(
            f"agent {agent!r}: {provider} reply has no message content: {str(reply)[:300]}",
            type="LLMBadResponse",
            non_retryable=True,
        ) from err
