"""LLM settings: ``[llm]`` (the flow's default model), ``[providers.NAME]`` (how to reach a
provider), ``[agents.X.llm]`` (one agent's overrides), and ``resolve_llm``, which merges them
into what one agent calls.

AgenticGoKit's meaning throughout: ``agent_flow.provider`` is the default of ``llm.provider``;
a provider is picked by name from ``[providers]``; an agent's ``llm`` table overrides the
flow's values. Secrets stay ``${VAR}`` templates in the config (and so in the snapshot and
in workflow history); the worker reads the variable when the agent runs (``expand_env``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from agentflow.config._base import Count, Seconds, StrictModel, zero_means_default
from agentflow.config.breaker import BreakerConfig

# What a provider can be (its ``type``; a [providers] table named like a kind needs none).
PROVIDER_KINDS = ("anthropic", "azure", "mock", "ollama", "openai", "openai-compatible")
PROVIDER_ALIASES = {
    "azureopenai": "azure",
    "azure-openai": "azure",
    "openai_compatible": "openai-compatible",
    "openai-compat": "openai-compatible",
}
# AgenticGoKit reads these variables when a provider table leaves the value out.
DEFAULT_API_KEYS = {
    "openai": "${OPENAI_API_KEY}",
    "azure": "${AZURE_OPENAI_API_KEY}",
    "anthropic": "${ANTHROPIC_API_KEY}",
}
DEFAULT_BASE_URLS = {"ollama": "http://localhost:11434", "azure": "${AZURE_OPENAI_ENDPOINT}"}
DEFAULT_AZURE_DEPLOYMENT = "${AZURE_OPENAI_DEPLOYMENT}"
# AgenticGoKit's model when a file names none (its OpenAI and Ollama adapters' defaults).
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "ollama": "llama3.2:latest"}
DEFAULT_AZURE_API_VERSION = "2024-10-21"
DEFAULT_TEMPERATURE = 0.7
DEFAULT_LLM_TIMEOUT_SECONDS = 120.0

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingVariable(LookupError):
    """A ``${VAR}`` whose variable is not set in the worker's environment."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def env_vars(text: str) -> list[str]:
    """The variable names a ``${VAR}`` template refers to."""
    return _VAR.findall(text)


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """``text`` with every ``${VAR}`` replaced from ``environ``; raises MissingVariable."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise MissingVariable(name)
        return environ[name]

    return _VAR.sub(value, text)


def provider_kind(name: str) -> str | None:
    """The kind a provider name or ``type`` stands for, None if it is not one."""
    name = PROVIDER_ALIASES.get(name, name)
    return name if name in PROVIDER_KINDS else None


def _secret_template(value: str | None) -> str | None:
    # A key written into the file would travel in every workflow input, so in history.
    if value is not None and not re.fullmatch(r"\s*\$\{[A-Za-z_][A-Za-z0-9_]*\}\s*", value):
        raise ValueError(
            'must name an environment variable, like "${OPENAI_API_KEY}": a key written in '
            "the file would be recorded in workflow history (the worker reads the variable "
            "when the agent runs)"
        )
    return value.strip() if value is not None else None


_temperature = Field(None, ge=0, le=2)
_penalty = Field(None, ge=-2, le=2)


class ProviderConfig(StrictModel):
    """``[providers.NAME]``: how to reach one provider. NAME is its kind (openai, azure,
    ollama, anthropic, openai-compatible, mock) unless ``type`` says which it is."""

    type: str | None = None
    model: str = ""
    api_key: str | None = None
    # AgenticGoKit spells it base_url (ollama, openai) or endpoint (azure).
    base_url: str | None = Field(None, validation_alias=AliasChoices("base_url", "endpoint"))
    # Azure OpenAI: the deployment (the model name on Azure) and the API version.
    deployment: str | None = Field(
        None, validation_alias=AliasChoices("deployment", "chat_deployment")
    )
    api_version: str | None = None
    temperature: float | None = _temperature
    max_tokens: Count | None = None
    timeout_seconds: Seconds | None = None
    # Calls to this provider fail fast while too many failed (agentflow/config/breaker.py).
    circuit_breaker: BreakerConfig | None = None

    _zero = model_validator(mode="before")(zero_means_default("timeout_seconds"))
    _key = field_validator("api_key")(_secret_template)

    @field_validator("type")
    @classmethod
    def _known_kind(cls, value: str | None) -> str | None:
        if value is not None and provider_kind(value) is None:
            raise ValueError(
                f"unknown provider type {value!r}; allowed: {', '.join(PROVIDER_KINDS)}"
            )
        return provider_kind(value) if value is not None else None


class LLMConfig(StrictModel):
    """``[llm]``: the model used by agents that have a ``system_prompt`` and no ``handler``
    (AgenticGoKit: the global LLM settings every agent's ``llm`` table overrides)."""

    provider: str = Field("", validation_alias=AliasChoices("provider", "type"))
    model: str = ""
    # None: not set here, so [providers.X] or the default decides (merge_llm). Unset must stay
    # visible after the snapshot's JSON round trip into workflows, which model_fields_set is not.
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: Count | None = None
    top_p: float | None = Field(None, ge=0, le=1)
    frequency_penalty: float | None = _penalty
    presence_penalty: float | None = _penalty
    base_url: str | None = None
    # A "${VAR}" template, or (older spelling) the *name* of the variable in api_key_env.
    api_key: str | None = None
    api_key_env: str | None = None
    timeout_seconds: Seconds | None = None
    # The breaker of the provider [llm] names (agentflow/config/breaker.py).
    circuit_breaker: BreakerConfig | None = None
    # Which key named the provider ("provider" or its alias "type"), for messages.
    _provider_key: str = PrivateAttr("provider")

    _zero = model_validator(mode="before")(zero_means_default("timeout_seconds"))
    _key = field_validator("api_key")(_secret_template)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_provider_key(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        if isinstance(data, dict) and "type" in data and "provider" not in data:
            model.named_by("type")
        return model

    def named_by(self, key: str) -> None:
        """Record which key named the provider: ``provider``, or its alias ``type``."""
        self._provider_key = key

    @property
    def provider_key(self) -> str:
        return self._provider_key

    def key_template(self) -> str | None:
        if self.api_key:
            return self.api_key
        return "${" + self.api_key_env + "}" if self.api_key_env else None


class AgentLLMConfig(StrictModel):
    """``[agents.X.llm]``: this agent's overrides of the flow's LLM settings."""

    provider: str | None = None
    model: str | None = None
    temperature: float | None = _temperature
    max_tokens: Count | None = None
    timeout_seconds: Seconds | None = None
    top_p: float | None = Field(None, ge=0, le=1)
    frequency_penalty: float | None = _penalty
    presence_penalty: float | None = _penalty

    _zero = model_validator(mode="before")(zero_means_default("timeout_seconds"))


class ResolvedLLM(StrictModel):
    """What one agent calls: the merge of its ``llm`` table, ``[llm]``, ``agent_flow.provider``
    and ``[providers.NAME]``. ``api_key``, ``base_url`` and ``model`` may hold ``${VAR}``
    templates: expand them on the worker, when the agent runs (``expand_env``)."""

    provider: str  # the name it was picked by ([providers] key or kind)
    kind: str  # one of PROVIDER_KINDS
    model: str
    base_url: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    temperature: float = DEFAULT_TEMPERATURE
    max_tokens: int | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    timeout_seconds: float = DEFAULT_LLM_TIMEOUT_SECONDS


def provider_name(llm: LLMConfig | None, flow_provider: str, agent: AgentLLMConfig | None) -> str:
    """The provider an agent uses: its own, else ``[llm]``'s, else ``agent_flow.provider``
    ("" when none is named)."""
    if agent is not None and agent.provider:
        return agent.provider
    if llm is not None and llm.provider:
        return llm.provider
    return flow_provider


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def merge_llm(
    name: str,
    providers: Mapping[str, ProviderConfig],
    llm: LLMConfig | None,
    agent: AgentLLMConfig | None,
) -> ResolvedLLM:
    """Merge the settings for provider ``name`` (which the loader has checked exists)."""
    table = providers.get(name) or ProviderConfig()
    kind = table.type or provider_kind(name) or name
    own = agent or AgentLLMConfig()
    # [llm]'s values apply when it names this provider (or names none).
    flow = llm if llm is not None and llm.provider in ("", name) else None

    def flow_value(key: str) -> Any:
        return getattr(flow, key) if flow is not None else None

    model = own.model or (flow.model if flow is not None else "") or table.model
    if kind == "azure":
        model = table.deployment or model or DEFAULT_AZURE_DEPLOYMENT
    if kind == "mock" and not model:
        model = "test"
    model = model or DEFAULT_MODELS.get(kind, "")
    key = table.api_key or (flow.key_template() if flow is not None else None)
    return ResolvedLLM(
        provider=name,
        kind=kind,
        model=model,
        base_url=table.base_url or flow_value("base_url") or DEFAULT_BASE_URLS.get(kind),
        api_key=key or DEFAULT_API_KEYS.get(kind),
        api_version=table.api_version or (DEFAULT_AZURE_API_VERSION if kind == "azure" else None),
        temperature=_first(
            own.temperature, flow_value("temperature"), table.temperature, DEFAULT_TEMPERATURE
        ),
        max_tokens=_first(own.max_tokens, flow_value("max_tokens"), table.max_tokens),
        top_p=_first(own.top_p, flow_value("top_p")),
        frequency_penalty=_first(own.frequency_penalty, flow_value("frequency_penalty")),
        presence_penalty=_first(own.presence_penalty, flow_value("presence_penalty")),
        timeout_seconds=_first(
            own.timeout_seconds,
            flow_value("timeout_seconds"),
            table.timeout_seconds,
            DEFAULT_LLM_TIMEOUT_SECONDS,
        ),
    )
