"""What every config table shares: the strict base model, names and limits, did-you-mean."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agentflow.limits import (
    INT32_MAX,
    MAX_DURATION_SECONDS,
    MAX_ID_BYTES,
    MIN_DURATION_SECONDS,
)

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
# Agent names go into activity ids (1,000 bytes) after an event and step number.
MAX_AGENT_NAME_BYTES = 200

ModeName = Literal["route", "sequential", "collaborative", "loop", "mixed"]


class _Strict(BaseModel):
    # strict: `enabled = "yes"` and `max_iterations = true` are errors, not coerced values;
    # allow_inf_nan: TOML's nan, inf and 1e400 are not numbers Temporal can take.
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, strict=True, allow_inf_nan=False
    )


def _duration(seconds: float) -> float:
    # Worded like pydantic's own bound messages, which the other numbers get.
    if not seconds > 0:
        raise ValueError("Input should be greater than 0 (seconds)")
    if seconds < MIN_DURATION_SECONDS:
        raise ValueError(
            f"Input should be at least {MIN_DURATION_SECONDS} seconds (1 ms): shorter Temporal "
            "timeouts and intervals round to none"
        )
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(
            f"Input should be at most {MAX_DURATION_SECONDS} seconds (10 years); Temporal "
            "keeps durations as 64-bit nanoseconds"
        )
    return seconds


def _fraction(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(
            "must be between 0 and 1 (the fraction of collaborative agents that may fail)"
        )
    return value


def _bytes_at_most(limit: int, why: str) -> AfterValidator:
    def check(text: str) -> str:
        size = len(text.encode("utf-8", "surrogatepass"))
        if not text.strip():
            raise ValueError("must not be empty")
        if size > limit:
            raise ValueError(f"is {size} bytes; at most {limit} bytes ({why})")
        return text

    return AfterValidator(check)


# Every number in the config is one of these (or carries both bounds itself): a value that
# Temporal cannot take must fail at load time, never inside a run (tests/test_hostile_input.py
# walks every field to keep it so).
Seconds = Annotated[float, AfterValidator(_duration)]
Fraction = Annotated[float, AfterValidator(_fraction)]
# A count (iterations, concurrency, tokens): positive, and an int32 where Temporal keeps it.
Count = Annotated[int, Field(gt=0, le=INT32_MAX)]
# Retries after the first try: Temporal's maximum_attempts (an int32) is 1 + this.
Retries = Annotated[int, Field(ge=0, le=INT32_MAX - 1)]
# A multiplier (retry backoff): finite, and small enough that intervals stay durations.
Factor = Annotated[float, Field(ge=1, le=100)]
# The validators that bound a number by themselves (the guard test accepts these).
BOUNDING_VALIDATORS = (_duration, _fraction)

AgentName = Annotated[
    str, _bytes_at_most(MAX_AGENT_NAME_BYTES, f"it goes into Temporal activity ids, at most "
                        f"{MAX_ID_BYTES} bytes")
]  # fmt: skip
TaskQueueName = Annotated[
    str, _bytes_at_most(MAX_ID_BYTES, "Temporal's limit for task queue names")
]


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
