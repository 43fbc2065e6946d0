"""The event runtime's tables: ``[hooks]``, ``[error_routing]`` and ``[sessions]``."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator, model_validator

from agentflow.config._base import (
    ERROR_KIND_ALIASES,
    ERROR_KINDS,
    HOOK_POINTS,
    Seconds,
    StrictModel,
    check_import_paths,
    did_you_mean,
)


class HooksConfig(StrictModel):
    """``[hooks]``: callbacks at the hook points, each a list of ``module:function``.

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

    _paths = field_validator(*HOOK_POINTS)(check_import_paths)

    def at(self, point: str) -> list[str]:
        """The callbacks that run at ``point``: its own, then the ``all`` ones."""
        own: list[str] = getattr(self, point)
        return own + [path for path in self.all if path not in own]

    def paths(self) -> list[str]:
        return list(dict.fromkeys(path for point in HOOK_POINTS for path in getattr(self, point)))


class ErrorRoutingConfig(StrictModel):
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
                    f"unknown error kind {kind!r}{did_you_mean(kind, ERROR_KINDS)}; allowed: "
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


class SessionsConfig(StrictModel):
    """``[sessions]``: how the session workflow behind ``agentflow emit`` keeps its events."""

    # None: an idle session stays open (it costs the server one row, and no worker).
    idle_timeout_seconds: Seconds | None = None
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
