"""Worker and agent runtime tables: ``[runtime]``, ``[logging]``, and the
per-agent ``retry_policy`` and ``rate_limit`` (AgenticGoKit's names and units).

``[runtime]`` and ``[logging]`` are worker settings: FlowConfig keeps them
out of the snapshot that travels in workflow input.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from agentflow.config._base import Count, Factor, Retries, Seconds, StrictModel, zero_means_default
from agentflow.limits import INT32_MAX

LOG_LEVELS = ("debug", "info", "warn", "warning", "error")
LOG_LEVEL_ALIASES = {"warn": "warning"}


class RetryPolicyConfig(StrictModel):
    """``[agents.X.retry_policy]``: the agent's Temporal RetryPolicy, in AgenticGoKit's terms.

    ``max_retries`` retries after the first try (maximum_attempts = 1 + max_retries);
    ``base_delay_ms`` is the first interval, growing by ``backoff_factor`` up to
    ``max_delay_ms``.
    """

    max_retries: Retries = 3
    # Milliseconds as an int32 (up to 24.8 days), like every integer the guard test allows.
    base_delay_ms: int = Field(1000, ge=1, le=INT32_MAX)
    max_delay_ms: int = Field(30_000, ge=1, le=INT32_MAX)
    backoff_factor: Factor = 2.0

    @model_validator(mode="after")
    def _max_covers_base(self) -> RetryPolicyConfig:
        if self.max_delay_ms < self.base_delay_ms:
            raise ValueError(
                f"max_delay_ms ({self.max_delay_ms}) is less than base_delay_ms "
                f"({self.base_delay_ms}); Temporal refuses such a retry policy, so raise "
                "max_delay_ms"
            )
        return self


class RateLimitConfig(StrictModel):
    """``[agents.X.rate_limit]``: at most ``requests_per_second`` starts of this agent, across
    every worker (its own task queue, rate-limited by the Temporal server)."""

    requests_per_second: float = Field(gt=0, le=100_000)
    # AgenticGoKit: burst_size. Temporal's task-queue limit has no burst setting.
    burst: int | None = Field(
        None, ge=1, le=100_000, validation_alias=AliasChoices("burst", "burst_size")
    )

    @field_validator("requests_per_second", mode="before")
    @classmethod
    def _int_is_a_rate(cls, value: Any) -> Any:
        # strict mode refuses an int for a float; `requests_per_second = 5` is a rate.
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > 100_000:  # also an int too large for a float
                raise ValueError("must be at most 100000 (requests per second)")
            return float(value)
        return value

    @field_validator("burst")
    @classmethod
    def _no_burst(cls, burst: int | None) -> int | None:
        if burst is not None:
            raise ValueError(
                "not supported: the limit is Temporal's task-queue rate limit, which has no "
                "burst setting (the server lets about one second's worth of starts through "
                "at once, spread over the queue's partitions); remove it"
            )
        return burst


# One worker process's slots and pollers: beyond these, run more worker processes (docs/deploys.md).
# The SDK's core sets aside the whole workflow cache at start: 10**9 aborted the process (a
# 36 GB allocation, tried when choosing this bound); 100,000 starts (a few MB).
MAX_SLOTS, MAX_POLLERS, MAX_CACHED_WORKFLOWS = 10_000, 100, 100_000
Slots = Annotated[int, Field(ge=1, le=MAX_SLOTS)]


class RuntimeConfig(StrictModel):
    """``[runtime]``: how much one worker runs at once (its Temporal worker's slots, pollers and
    workflow cache), and the agents' default timeout. Unset keys keep Temporal's defaults; a
    worker serving several flows on one task queue takes the smallest value any of them sets."""

    # Agents (activities, regular and local) one worker process runs at the same time: sets
    # both max_concurrent_activities and max_concurrent_local_activities.
    max_concurrent_agents: Count | None = None
    # The timeout of an agent's attempt when its table sets none (AgenticGoKit: 30 s).
    timeout_seconds: Seconds | None = None
    # Regular agents (activity tasks) one worker process runs at once; unset: 100.
    max_concurrent_activities: Slots | None = None
    # Local agents (local activities) one worker process runs at once; unset: 100.
    max_concurrent_local_activities: Slots | None = None
    # Workflow tasks (steps of runs and sessions) one worker process runs at once; unset: 100.
    # At least 2 while the workflow cache is on.
    max_concurrent_workflow_tasks: Slots | None = None
    # Concurrent polls for workflow tasks (split between the task queue and the worker's
    # sticky queue); unset: 5. At least 2 while the workflow cache is on.
    workflow_task_pollers: Annotated[int, Field(ge=1, le=MAX_POLLERS)] | None = None
    # Concurrent polls for activity tasks (regular agents); unset: 5.
    activity_task_pollers: Annotated[int, Field(ge=1, le=MAX_POLLERS)] | None = None
    # Runs and sessions kept in the worker's memory between their steps (the sticky cache:
    # their next workflow task goes to this worker, without replaying history); unset: 1000;
    # 0 turns the cache off (every step replays its run's history).
    max_cached_workflows: Annotated[int, Field(ge=0, le=MAX_CACHED_WORKFLOWS)] | None = None

    _zero = model_validator(mode="before")(
        zero_means_default("timeout_seconds", "max_concurrent_agents")
    )

    @model_validator(mode="after")
    def _coherent_worker(self) -> RuntimeConfig:
        split = [key for key in ("max_concurrent_activities", "max_concurrent_local_activities")
                 if getattr(self, key) is not None]  # fmt: skip
        if self.max_concurrent_agents is not None and split:
            raise ValueError(
                f"max_concurrent_agents and {' and '.join(split)} are both set; "
                "max_concurrent_agents sets max_concurrent_activities and "
                "max_concurrent_local_activities together: set it, or them"
            )
        if self.max_cached_workflows != 0:  # the cache is on (Temporal's default: 1000)
            for key in ("max_concurrent_workflow_tasks", "workflow_task_pollers"):
                if getattr(self, key) == 1:
                    raise ValueError(
                        f"{key} = 1: Temporal needs at least 2 while the workflow cache is on "
                        "(one for the task queue, one for the worker's sticky queue); set 2 or "
                        "more, or max_cached_workflows = 0"
                    )
        return self

    def worker_options(self) -> dict[str, int]:
        """The keys set here, as the Temporal Worker's own option names (pollers as counts)."""
        options: dict[str, int] = {}
        if self.max_concurrent_agents is not None:
            options["max_concurrent_activities"] = self.max_concurrent_agents
            options["max_concurrent_local_activities"] = self.max_concurrent_agents
        for key in WORKER_KEYS:
            value = getattr(self, key)
            if value is not None:
                options[key] = value
        return options


# [runtime] keys that are Temporal Worker options of the same name (pollers are counts here).
WORKER_KEYS = ("max_concurrent_activities", "max_concurrent_local_activities",
               "max_concurrent_workflow_tasks", "workflow_task_pollers", "activity_task_pollers",
               "max_cached_workflows")  # fmt: skip


class LoggingConfig(StrictModel):
    """``[logging]``: the worker's log level and line format, and optionally a log file."""

    level: str = "info"
    # json: one JSON object per line; console (AgenticGoKit also says text): plain lines.
    format: Literal["json", "console", "text"] = "console"
    # Also write the lines to this file, rotated at max_size MB keeping max_backups files.
    file: str | None = None
    file_only: bool = False
    max_size: int = Field(100, gt=0, le=1024 * 1024)
    max_backups: int = Field(3, ge=0, le=1000)

    _zero = model_validator(mode="before")(zero_means_default("max_size"))

    @field_validator("level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        name = level.lower()
        if name not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}; allowed: debug, info, warn, error")
        return LOG_LEVEL_ALIASES.get(name, name)

    @model_validator(mode="after")
    def _file_only_needs_file(self) -> LoggingConfig:
        if self.file_only and not self.file:
            raise ValueError('file_only = true needs file = "path/to/worker.log"')
        return self
