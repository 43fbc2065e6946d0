"""agentflow.toml: the schema (pydantic models) and the loader that turns a bad file into one
clear message naming the file, the key path, what is wrong and what is allowed.

This module is imported by workflow code (the config snapshot travels in the workflow input),
so it must stay free of I/O at import time and of anything non-deterministic in its models.
"""

from __future__ import annotations

import difflib
import sys
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agentflow.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

MODES = ("route", "sequential", "collaborative", "loop", "mixed")
MODE_ALIASES = {"collaborate": "collaborative", "parallel": "collaborative"}
LLM_PROVIDERS = ("ollama", "openai")
DEFAULT_CONFIG_FILE = "agentflow.toml"
# The seeds' hook points (AgenticGoKit's HookPoint names are accepted as aliases).
HOOK_POINTS = ("before_event_handling", "after_event_handling", "before_agent_run",
               "after_agent_run", "agent_error", "all")  # fmt: skip
# How an agent failed, for [error_routing] category_handlers (see error_kind in workflows).
ERROR_KINDS = ("validation", "timeout", "fatal", "default")
# AgenticGoKit's error codes for the same kinds.
ERROR_KIND_ALIASES = {"VALIDATION_ERROR": "validation", "TIMEOUT_ERROR": "timeout"}
# Temporal keeps ids and Keyword search attribute values short (workflow ids: 1,000 bytes;
# a Keyword value: 2,048 bytes). Flow names go into both, with a session id or event id.
MAX_FLOW_NAME_BYTES = 200

ModeName = Literal["route", "sequential", "collaborative", "loop", "mixed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FlowMeta(_Strict):
    """``[agent_flow]``: what the flow is called."""

    name: str = "agentflow"
    version: str = "0.0.0"
    description: str = ""

    @field_validator("name")
    @classmethod
    def _usable_name(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be empty (workflow ids start with it)")
        if len(name.encode()) > MAX_FLOW_NAME_BYTES:
            raise ValueError(
                f"is {len(name.encode())} bytes; at most {MAX_FLOW_NAME_BYTES} (it goes into "
                "Temporal workflow ids and search attributes)"
            )
        return name


class LLMConfig(_Strict):
    """``[llm]``: the model used by agents that have a ``system_prompt`` and no ``handler``."""

    provider: str = Field("", validation_alias=AliasChoices("provider", "type"))
    model: str = ""
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    base_url: str | None = None
    # The *name* of the environment variable holding the key: secrets never enter the config
    # snapshot, which is recorded in workflow history.
    api_key_env: str | None = None
    timeout_seconds: float = Field(120.0, gt=0)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value and value not in LLM_PROVIDERS:
            raise ValueError(
                f"unknown provider {value!r}{_did_you_mean(value, LLM_PROVIDERS)}; "
                f"allowed: {', '.join(LLM_PROVIDERS)}"
            )
        return value


class RetrySettings(_Strict):
    """How Temporal retries a failed agent (``[orchestration.retry]``, ``[agents.X.retry]``)."""

    initial_interval_seconds: float = Field(1.0, gt=0)
    backoff_coefficient: float = Field(2.0, ge=1)
    maximum_interval_seconds: float = Field(30.0, gt=0)
    # Exception class names (e.g. "ValueError") that fail the agent at once, like FatalError.
    non_retryable_errors: list[str] = Field(default_factory=list)


class AgentConfig(_Strict):
    """``[agents.NAME]``: one agent."""

    role: str = ""
    description: str = ""
    system_prompt: str = ""
    enabled: bool = True
    capabilities: list[str] = Field(default_factory=list)
    handler: str | None = None
    timeout_seconds: float = Field(60.0, gt=0)
    retry_attempts: int | None = Field(None, ge=0)
    retry: RetrySettings | None = None
    # Topics this agent reacts to when another agent publishes (workflows/_bus.py).
    subscribes: list[str] = Field(default_factory=list)

    @field_validator("subscribes")
    @classmethod
    def _topic_names(cls, topics: list[str]) -> list[str]:
        for topic in topics:
            if not topic.strip():
                raise ValueError("topic names must be non-empty strings")
            if topic != topic.strip() or "," in topic:
                raise ValueError(
                    f"topic {topic!r}: no commas or surrounding spaces (agents publish "
                    f'several topics as meta["publish"] = "a,b")'
                )
            if topics.count(topic) > 1:
                raise ValueError(f"topic {topic!r} is listed twice")
        return topics

    # Run as a Temporal local activity (no server round trip per step); None: the flow's
    # ``[orchestration] local_agents`` default. See the README's Performance section for the
    # crash window: local steps since the last workflow task completion may run again.
    local: bool | None = None


class OrchestrationConfig(_Strict):
    """``[orchestration]``: which mode runs which agents, and the limits of a run."""

    mode: ModeName
    timeout_seconds: float = Field(300.0, gt=0)
    max_iterations: int = Field(10, gt=0)
    retry_attempts: int = Field(3, ge=0)
    collaborative_agents: list[str] = Field(default_factory=list)
    sequential_agents: list[str] = Field(default_factory=list)
    loop_agent: str | None = None
    entry_agent: str | None = None
    failure_threshold: float = 0.0
    max_concurrency: int = Field(10, gt=0)
    max_hops: int = Field(10, gt=0)
    # Default of every agent's ``local`` option.
    local_agents: bool = False
    # Temporal's workflow task timeout: how soon a crashed worker's flow moves on, and (at
    # 80 %) how often a chain of local agents gets its results recorded.
    workflow_task_timeout_seconds: float = Field(10.0, gt=0, le=120)
    retry: RetrySettings = Field(default_factory=lambda: RetrySettings())

    @field_validator("mode", mode="before")
    @classmethod
    def _normalise_mode(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        value = MODE_ALIASES.get(value, value)
        if value not in MODES:
            allowed = ", ".join(MODES) + " (aliases: collaborate, parallel)"
            raise ValueError(
                f"unknown mode {value!r}{_did_you_mean(value, MODES + tuple(MODE_ALIASES))}; "
                f"allowed: {allowed}"
            )
        return value

    @field_validator("failure_threshold")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0 <= value <= 1:
            raise ValueError(
                "must be between 0 and 1 (the fraction of collaborative agents that may fail)"
            )
        return value


def _hook_paths(paths: list[str]) -> list[str]:
    for path in paths:
        module, sep, attr = path.partition(":")
        if not (sep and module.strip() and attr.strip()):
            raise ValueError(f"{path!r} must look like 'package.module:function'")
    return paths


class HooksConfig(_Strict):
    """``[hooks]``: callbacks at the seeds' hook points, each a list of ``module:function``.

    Event hooks run in an activity of their own; agent hooks run inside the agent's activity
    (no extra server round trip). ``all`` callbacks run at every point, after the point's own.
    """

    before_event_handling: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("before_event_handling", "BeforeEventHandling"),
    )
    after_event_handling: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("after_event_handling", "AfterEventHandling"),
    )
    before_agent_run: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("before_agent_run", "BeforeAgentRun")
    )
    after_agent_run: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("after_agent_run", "AfterAgentRun")
    )
    agent_error: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("agent_error", "AgentError")
    )
    all: list[str] = Field(default_factory=list, validation_alias=AliasChoices("all", "AllHooks"))

    _paths = field_validator(*HOOK_POINTS)(_hook_paths)

    def at(self, point: str) -> list[str]:
        """The callbacks that run at ``point``: its own, then the ``all`` ones."""
        own: list[str] = getattr(self, point)
        return own + [path for path in self.all if path not in own]

    def paths(self) -> list[str]:
        return list(dict.fromkeys(path for point in HOOK_POINTS for path in getattr(self, point)))


class ErrorRoutingConfig(_Strict):
    """``[error_routing]``: agents that handle an event whose agent failed for good.

    The handler for a failure is ``category_handlers[kind]``, else ``category_handlers.default``,
    else ``error_handler``; with none, the event goes to dead letters (or the run fails).
    """

    enabled: bool = True
    error_handler: str | None = Field(
        None, validation_alias=AliasChoices("error_handler", "error_handler_name")
    )
    category_handlers: dict[str, str] = Field(default_factory=dict)

    @field_validator("category_handlers")
    @classmethod
    def _known_kinds(cls, handlers: dict[str, str]) -> dict[str, str]:
        normalised: dict[str, str] = {}
        for kind, agent in handlers.items():
            name = ERROR_KIND_ALIASES.get(kind, kind)
            if name not in ERROR_KINDS:
                raise ValueError(
                    f"unknown error kind {kind!r}{_did_you_mean(kind, ERROR_KINDS)}; allowed: "
                    f"{', '.join(ERROR_KINDS)} (AgenticGoKit's VALIDATION_ERROR and "
                    "TIMEOUT_ERROR are accepted too)"
                )
            normalised[name] = agent
        return normalised

    def handler_for(self, kind: str) -> str | None:
        if not self.enabled:
            return None
        handlers = self.category_handlers
        return handlers.get(kind) or handlers.get("default") or self.error_handler

    def handlers(self) -> dict[str, str]:
        """Key path -> agent, for cross-checking that each handler is a defined agent."""
        named = {
            f"category_handlers.{kind}": agent for kind, agent in self.category_handlers.items()
        }
        if self.error_handler:
            named["error_handler"] = self.error_handler
        return named


class SessionsConfig(_Strict):
    """``[sessions]``: how the session workflow behind ``agentflow emit`` keeps its events."""

    # None: an idle session stays open (it costs the server one row, and no worker).
    idle_timeout_seconds: float | None = Field(None, gt=0, le=10 * 365 * 24 * 3600)
    # Events waiting in one session; more are dead-lettered ("session queue full").
    max_queued_events: int = Field(1000, gt=0, le=100_000)
    # Events per run before continue-as-new (earlier if Temporal suggests it).
    events_per_run: int = Field(200, gt=0, le=2_000)
    # Event ids remembered for deduplication, across continue-as-new.
    dedupe_window: int = Field(10_000, gt=0, le=100_000)

    @model_validator(mode="after")
    def _window_covers_queue(self) -> SessionsConfig:
        if self.dedupe_window < self.max_queued_events:
            raise ValueError(
                f"dedupe_window ({self.dedupe_window}) must be at least max_queued_events "
                f"({self.max_queued_events}): a queued event's id must still be remembered"
            )
        return self


class TemporalConfig(_Strict):
    """``[temporal]``: overrides of Temporal's standard client settings (TEMPORAL_ADDRESS, …)."""

    address: str | None = None
    namespace: str | None = None
    task_queue: str = "agentflow"
    profile: str | None = None
    tls: bool | None = None


class TelemetryConfig(_Strict):
    """``[telemetry]``: OpenTelemetry spans and metrics of flows and agents (off by default)."""

    exporter: Literal["none", "console", "otlp"] = "none"
    # OTLP/HTTP endpoint; unset means OTEL_EXPORTER_OTLP_ENDPOINT or http://localhost:4318.
    endpoint: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    service_name: str = "agentflow"


class FlowConfig(_Strict):
    """A whole agentflow.toml. A snapshot of it travels in every workflow input."""

    agent_flow: FlowMeta = Field(default_factory=FlowMeta)
    llm: LLMConfig | None = None
    orchestration: OrchestrationConfig
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    hooks: HooksConfig = Field(default_factory=HooksConfig)
    error_routing: ErrorRoutingConfig = Field(default_factory=ErrorRoutingConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    # Client/worker settings, not flow logic: excluded from the snapshot that travels in the
    # workflow input (and so from history), since telemetry headers may hold credentials.
    temporal: TemporalConfig = Field(default_factory=TemporalConfig, exclude=True)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig, exclude=True)

    @property
    def name(self) -> str:
        return self.agent_flow.name

    @property
    def mode(self) -> ModeName:
        return self.orchestration.mode

    def enabled_agents(self) -> list[str]:
        return [name for name, agent in self.agents.items() if agent.enabled]

    def subscribers(self, topic: str) -> list[str]:
        """The enabled agents subscribed to ``topic``, in config order (disabled ones never
        receive)."""
        return [name for name in self.enabled_agents() if topic in self.agents[name].subscribes]

    def topics(self) -> list[str]:
        """Every topic an enabled agent subscribes to, in order of first mention."""
        names = self.enabled_agents()
        return list(dict.fromkeys(t for name in names for t in self.agents[name].subscribes))

    def max_attempts(self, agent: str) -> int:
        """Temporal's maximum_attempts for an agent: its first try plus ``retry_attempts``."""
        own = self.agents[agent].retry_attempts
        return 1 + (self.orchestration.retry_attempts if own is None else own)

    def is_local(self, agent: str) -> bool:
        """Whether ``agent`` runs as a local activity (its ``local``, else the flow default)."""
        own = self.agents[agent].local
        return self.orchestration.local_agents if own is None else own

    def retry_settings(self, agent: str) -> RetrySettings:
        return self.agents[agent].retry or self.orchestration.retry


def load_config(
    path: str | Path = DEFAULT_CONFIG_FILE, *, check_handlers: bool = True
) -> FlowConfig:
    """Read, validate and cross-check an agentflow.toml.

    Raises ConfigError with one message (file, key path, what is wrong, what is allowed).
    With ``check_handlers`` every enabled agent's handler is imported, so a typo in a module
    path fails here rather than inside a running flow.
    """
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: file not found (pass --config PATH)") from None
    except OSError as err:
        raise ConfigError(f"{file}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{file}: not UTF-8 text (byte {err.start}): TOML files must be saved as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: invalid TOML: {err}") from None
    return parse_config(raw, source=str(file), base_dir=file.parent, check_handlers=check_handlers)


def parse_config(
    raw: dict[str, Any],
    *,
    source: str = DEFAULT_CONFIG_FILE,
    base_dir: Path | None = None,
    check_handlers: bool = False,
) -> FlowConfig:
    """Validate an already-parsed TOML document (see load_config)."""
    try:
        config = FlowConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(source, err)) from None
    problems = list(_reference_problems(config))
    if check_handlers and not problems:
        from agentflow.registry import handler_problem  # imports user code: only when asked

        for name in config.enabled_agents():
            handler = config.agents[name].handler
            if handler is not None and (problem := handler_problem(handler, base_dir)):
                problems.append(f"agents.{name}.handler: {problem}")
        for point in HOOK_POINTS:
            for index, path in enumerate(getattr(config.hooks, point)):
                if problem := handler_problem(path, base_dir):
                    problems.append(f"hooks.{point}[{index}]: {problem}")
    if problems:
        raise ConfigError("\n".join(f"{source}: {problem}" for problem in problems))
    return config


def _reference_problems(config: FlowConfig) -> Iterable[str]:
    orch = config.orchestration
    defined = ", ".join(config.agents) or "none"

    def check(key: str, name: str) -> str | None:
        if name not in config.agents:
            return (
                f"orchestration.{key}: agent {name!r} is not defined"
                f"{_did_you_mean(name, config.agents)}; defined agents: {defined}"
            )
        if not config.agents[name].enabled:
            return (
                f"orchestration.{key}: agent {name!r} has enabled = false; enable it or remove it"
            )
        return None

    needs: dict[str, tuple[str, ...]] = {
        "sequential": ("sequential_agents",),
        "collaborative": ("collaborative_agents",),
        "mixed": ("collaborative_agents", "sequential_agents"),
        "loop": ("loop_agent",),
        "route": (),
    }
    for key in needs[orch.mode]:
        if not getattr(orch, key):
            what = "name the agent to repeat" if key == "loop_agent" else "list the agents to run"
            yield f"orchestration.{key}: required for mode = {orch.mode!r} ({what})"
    for key in ("collaborative_agents", "sequential_agents"):
        names: list[str] = getattr(orch, key)
        for index, name in enumerate(names):
            if names.index(name) != index:
                yield f"orchestration.{key}: agent {name!r} is listed twice"
            elif problem := check(f"{key}[{index}]", name):
                yield problem
    for key in ("loop_agent", "entry_agent"):
        value: str | None = getattr(orch, key)
        if value and (problem := check(key, value)):
            yield problem
    for key, agent in config.error_routing.handlers().items():
        if problem := check(key, agent):
            yield "error_routing." + problem.removeprefix("orchestration.")
    if orch.mode == "route" and not config.enabled_agents():
        yield "agents: route mode needs at least one enabled agent"
    has_llm = config.llm is not None and bool(config.llm.provider)
    llm_agents = [name for name in config.enabled_agents() if config.agents[name].handler is None]
    if has_llm and llm_agents and config.llm is not None and not config.llm.model:
        yield f'llm.model: required by the LLM agents {", ".join(llm_agents)} (e.g. "gemma3:1b")'
    for name in config.enabled_agents():
        if config.agents[name].handler is None and not has_llm:
            yield (
                f"agents.{name}: no handler and no [llm] provider; set "
                f'handler = "package.module:function" or configure [llm] provider '
                f"({', '.join(LLM_PROVIDERS)}) with a system_prompt"
            )


def _describe(source: str, err: ValidationError) -> str:
    lines = []
    for error in err.errors():
        loc = tuple(error["loc"])
        key = _key_path(loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            hint = _did_you_mean(str(loc[-1]), allowed)
            lines.append(f"{source}: {key}: unknown key{hint}; allowed keys: {', '.join(allowed)}")
        elif error["type"] == "missing":
            lines.append(f"{source}: {key}: required key is missing")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            value = error.get("input")
            # An unknown mode or provider already quotes the value it got.
            got = "" if isinstance(value, str) and repr(value) in message else f" (got {value!r})"
            lines.append(f"{source}: {key}: {message}{got}")
    return "\n".join(lines)


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys a table at ``loc`` accepts, found by walking the models along the path."""
    current: Any = FlowConfig
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Optional[X] -> X."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
