"""``[orchestration]``: which mode runs which agents, and the limits of a run."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from agentflow.config._base import (
    AGK_MODES_UNSUPPORTED,
    MODE_ALIASES,
    MODES,
    Count,
    Fraction,
    ModeName,
    Retries,
    Seconds,
    StrictModel,
    did_you_mean,
    zero_means_default,
)
from agentflow.config.agent import RetrySettings


class Route(StrictModel):
    """``[[orchestration.routes]]``: route mode sends an event to ``agent`` when ``when`` (a CEL
    expression on the event, agentflow/config/expressions.py) holds; the first that holds
    wins, and a last route without ``when`` is the default."""

    when: str | None = None
    agent: str


class OrchestrationConfig(StrictModel):
    """``[orchestration]``: which mode runs which agents, and the limits of a run."""

    mode: ModeName
    # 0 (AgenticGoKit's scaffold writes it when unset): the default.
    timeout_seconds: Seconds = 300.0
    max_iterations: Count = 10
    # A run whose LLM calls use more tokens (input + output) than this fails (None: no cap).
    max_tokens_per_run: Count | None = None

    _zero = model_validator(mode="before")(zero_means_default("timeout_seconds"))
    retry_attempts: Retries = 3
    collaborative_agents: list[str] = Field(default_factory=list)
    sequential_agents: list[str] = Field(default_factory=list)
    loop_agent: str | None = None
    entry_agent: str | None = None
    failure_threshold: Fraction = 0.0
    max_concurrency: Count = 10
    max_hops: Count = 10
    # Default of every agent's ``local`` option.
    local_agents: bool = False
    # Temporal's workflow task timeout: how soon a crashed worker's flow moves on, and (at
    # 80 %) how often a chain of local agents gets its results recorded.
    workflow_task_timeout_seconds: Annotated[Seconds, Field(le=120)] = 10.0
    # How many levels of flows inside flows (agents with ``flow = ...``) this file may hold.
    max_flow_depth: Count = 5
    retry: RetrySettings = Field(default_factory=lambda: RetrySettings())
    # Route mode: where an event without a target agent goes first, decided on its content.
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _routes_for_route_mode(self) -> OrchestrationConfig:
        if self.routes and self.mode != "route":
            raise ValueError(f'routes are for mode = "route", not {self.mode!r}')
        for index, route in enumerate(self.routes[:-1]):
            if route.when is None:
                raise ValueError(
                    f"routes[{index}] has no `when`: only the last route may be the default "
                    "(routes are taken in order, so the ones after it could never match)"
                )
        return self

    @field_validator("mode", mode="before")
    @classmethod
    def _normalise_mode(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        value = MODE_ALIASES.get(value, value)
        allowed = ", ".join(MODES) + " (aliases: collaborate, parallel)"
        if value in AGK_MODES_UNSUPPORTED:
            raise ValueError(f"mode {value!r}: {AGK_MODES_UNSUPPORTED[value]}; allowed: {allowed}")
        if value not in MODES:
            raise ValueError(
                f"unknown mode {value!r}{did_you_mean(value, MODES + tuple(MODE_ALIASES))}; "
                f"allowed: {allowed}"
            )
        return value
