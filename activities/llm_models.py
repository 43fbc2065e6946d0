"""The pydantic-ai model an LLM agent calls, built from its resolved ``[llm]`` settings, and
what a failed model request means to Temporal.

``${VAR}`` templates (api keys, endpoints, Azure deployments) are expanded here, from the
worker's environment, when the agent runs: they never enter workflow input or history. The
SDK clients make one attempt (``max_retries = 0``): Temporal owns retries, so a failure maps
to a retryable (429, 408, 5xx, network) or non-retryable (other 4xx, a reply that is not the
API's) ApplicationError naming the agent.

A failure keeps a short cause: the model error's type and message, without its stack trace or
the transport errors under it (openai -> httpx -> h11, each with its trace). Temporal stores a
retried activity's last failure only up to 4 KB (the server's dynamic config
``limit.mutableStateActivityFailureSize.error``); over it, the next attempt's
ActivityTaskStarted shows "Failure exceeds size limit." instead. The worker's log has one
INFO line per failed attempt (the failure's message, with its run, agent and attempt); the
whole traceback, with the transport errors under it, is logged at DEBUG only
(``[logging] level = "debug"``), and the SDK's own "Completing activity as failed" record of
that failure (a WARNING with another traceback) is left out.
"""

from __future__ import annotations

import logging
import os
import weakref
from datetime import timedelta
from typing import Any

from pydantic_ai.exceptions import (
    AgentRunError,
    ModelAPIError,
    ModelConnectionError,
    ModelHTTPError,
    UnexpectedModelBehavior,
    UsageLimitExceeded,
    UserError,
)
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings
from temporalio import activity
from temporalio.exceptions import ApplicationError

from agentflow.config.llm import MissingVariable, ResolvedLLM, expand_env
from agentflow.errors import retry_after_seconds
from agentflow.limits import shorten

log = logging.getLogger("agentflow.llm")
# With the run, agent and attempt as fields (agentflow/worker/logs.py), not in the message.
attempt_log = activity.LoggerAdapter(log, None)
attempt_log.activity_info_on_message = False

RETRYABLE_STATUS = {408, 409, 425, 429}
# The key sent to servers that need none (a local Ollama, vLLM ...): the OpenAI SDK wants one.
NO_KEY = "not-needed"
# Models by their expanded settings: a model holds an HTTP client whose connections are
# worth keeping between calls. Keys are secrets: this lives in the worker's memory only.
_models: dict[tuple[Any, ...], Model] = {}
MAX_CACHED_MODELS = 64
# An error body or message shown in a failure: with the failure's own message and stack trace
# this keeps it under Temporal's 4 KB for a retried activity's last failure.
SHOWN_CHARS = 800


def config_error(agent: str, why: str) -> ApplicationError:
    return ApplicationError(f"agent {agent!r}: {why}", type="LLMConfigError", non_retryable=True)


def expanded(agent: str, llm: ResolvedLLM, key: str) -> str | None:
    """A setting with its ``${VAR}`` templates read from the worker's environment."""
    value = getattr(llm, key)
    if value is None:
        return None
    try:
        return expand_env(value, os.environ)
    except MissingVariable as missing:
        raise config_error(
            agent,
            f"environment variable {missing.name!r} ({key} of provider {llm.provider!r}) is "
            "not set on this worker",
        ) from None


def model_for(agent: str, llm: ResolvedLLM) -> Model:
    """The pydantic-ai model for ``llm`` (one per distinct setting in this worker)."""
    name = expanded(agent, llm, "model") or ""
    base_url = expanded(agent, llm, "base_url")
    api_key = expanded(agent, llm, "api_key")
    if not name and llm.kind != "mock":
        raise config_error(agent, f"no model is set for provider {llm.provider!r}")
    cache_key = (llm.kind, name, base_url, api_key, llm.api_version)
    model = _models.get(cache_key)
    if model is None:
        if len(_models) >= MAX_CACHED_MODELS:
            _models.clear()
        model = _models[cache_key] = build_model(agent, llm, name, base_url, api_key)
    return model


def build_model(
    agent: str, llm: ResolvedLLM, name: str, base_url: str | None, api_key: str | None
) -> Model:
    """A new pydantic-ai model (``model_for`` keeps one per setting)."""
    # Imported per kind: each pulls in its own SDK.
    if llm.kind == "mock":
        from pydantic_ai.models.test import TestModel

        return TestModel(model_name=name or "test")
    if llm.kind == "anthropic":
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        return AnthropicModel(name, provider=AnthropicProvider(api_key=api_key or NO_KEY,
                                                               base_url=base_url))  # fmt: skip
    from pydantic_ai.models.openai import OpenAIChatModel

    if llm.kind == "azure":
        from pydantic_ai.providers.azure import AzureProvider

        if not base_url:
            raise config_error(agent, f"provider {llm.provider!r} needs an endpoint (base_url)")
        azure = AzureProvider(azure_endpoint=base_url, api_version=llm.api_version,
                              api_key=api_key or NO_KEY)  # fmt: skip
        return OpenAIChatModel(name, provider=azure)
    if llm.kind == "ollama":
        from pydantic_ai.models.ollama import OllamaModel
        from pydantic_ai.providers.ollama import OllamaProvider

        # AgenticGoKit names Ollama's root; its OpenAI-compatible API lives under /v1.
        root = (base_url or "http://localhost:11434").rstrip("/")
        url = root if root.endswith("/v1") else f"{root}/v1"
        return OllamaModel(name, provider=OllamaProvider(base_url=url, api_key=api_key))
    from pydantic_ai.providers.openai import OpenAIProvider

    if llm.kind == "openai" and not api_key and not base_url:
        raise config_error(
            agent, f"provider {llm.provider!r} has no api_key; set OPENAI_API_KEY on the worker"
        )
    provider = OpenAIProvider(base_url=base_url, api_key=api_key or NO_KEY)
    return OpenAIChatModel(name, provider=provider)


def settings_for(llm: ResolvedLLM) -> ModelSettings:
    """One request's settings: the sampling knobs, the timeout, and no SDK retries."""
    settings = ModelSettings(temperature=llm.temperature, timeout=llm.timeout_seconds,
                             max_retries=0)  # fmt: skip
    if llm.max_tokens is not None:
        settings["max_tokens"] = llm.max_tokens
    if llm.top_p is not None:
        settings["top_p"] = llm.top_p
    if llm.frequency_penalty is not None:
        settings["frequency_penalty"] = llm.frequency_penalty
    if llm.presence_penalty is not None:
        settings["presence_penalty"] = llm.presence_penalty
    return settings


def as_failure(agent: str, llm: ResolvedLLM, err: Exception) -> ApplicationError | None:
    """A model error as Temporal should see it, or None for anything else.

    The error becomes a short cause (``_cut_short``): log it first, in one line, and whole
    (with its chain of transport errors, often 200 lines) only at DEBUG."""
    failure = _failure(agent, llm, err)
    if failure is not None:
        kind = f"{failure.type}, non-retryable" if failure.non_retryable else failure.type
        message = " ".join(failure.message.split())  # one line, whatever the reply held
        extra = {"agent": agent}
        attempt_log.info("%s (%s)", message, kind, extra=extra)
        attempt_log.debug("agent %r: the %s request failed", agent, llm.kind, exc_info=err,
                          extra=extra)  # fmt: skip
        _cut_short(err)
        _logged.add(failure)
    return failure


# Failures as_failure has logged (the worker drops them as the activity ends).
_logged: weakref.WeakSet[BaseException] = weakref.WeakSet()


class _SkipLogged(logging.Filter):
    """Leaves out the SDK's "Completing activity as failed" record (a WARNING with the
    traceback again) of a failure ``as_failure`` has logged already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[1] in _logged)


logging.getLogger(activity.logger.name).addFilter(_SkipLogged())


def _cut_short(err: BaseException) -> None:
    """Drop ``err``'s traceback and the exceptions under it, so that the failure that names
    it as its cause stays well under Temporal's 4 KB for a retried activity's last failure.
    Its type and message (the provider's words) stay; the failure's message repeats them."""
    err.__cause__ = None
    err.__context__ = None
    err.__suppress_context__ = True
    err.__traceback__ = None
    if isinstance(err, AgentRunError):  # its message may hold a whole error page
        err.message = shorten(err.message, SHOWN_CHARS)
        err.args = (err.message,)


def _failure(agent: str, llm: ResolvedLLM, err: Exception) -> ApplicationError | None:
    where = f"agent {agent!r}: {llm.kind}"
    if isinstance(err, ModelHTTPError):
        status = err.status_code
        retryable = status in RETRYABLE_STATUS or status >= 500
        # A provider that asks to be left alone (429, 503 with Retry-After) is retried no
        # sooner than it asked: Temporal's next attempt waits that long, not the policy's.
        wait = retry_after_seconds(err.headers or {}) if retryable else None
        return ApplicationError(
            f"{where} answered HTTP {status}"
            f"{f' (Retry-After: {wait:g}s)' if wait is not None else ''}: {_body(err.body)}",
            type=f"LLMHTTP{status}",
            non_retryable=not retryable,
            next_retry_delay=timedelta(seconds=wait) if wait else None,
        )
    if isinstance(err, ModelConnectionError):
        # Say where the transport broke: a reply cut off mid-stream did reach the server.
        what = _BROKEN_AT.get(err.phase or "", "lost its connection at")
        return ApplicationError(f"{where} {what} {llm.base_url}: {err}", type="LLMUnreachable")
    if isinstance(err, ModelAPIError | UnexpectedModelBehavior):
        # A reply that is not the API's (often a base_url missing its path), or one that
        # never validated against output_schema after the model's own retries.
        return ApplicationError(
            f"{where} gave an unusable reply: {err} (is base_url right? {llm.base_url})"
            if isinstance(err, ModelAPIError)
            else f"{where} gave an unusable reply: {err}",
            type="LLMBadResponse",
            non_retryable=True,
        )
    if isinstance(err, UsageLimitExceeded | UserError):
        return ApplicationError(f"{where}: {err}", type=type(err).__name__, non_retryable=True)
    return None


_BROKEN_AT = {
    "pool": "cannot be reached at",
    "connect": "cannot be reached at",
    "write": "lost the connection while sending the request to",
    "read": "lost the connection while reading the reply from",
}


def _body(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and "message" in error:
            return shorten(str(error["message"]), SHOWN_CHARS)
        return shorten(str(error), SHOWN_CHARS)
    return shorten(str(body), SHOWN_CHARS)
