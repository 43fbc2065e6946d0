"""``cache = { ttl = "1h" }`` on an agent (its results cached, agentflow/client/result_cache.py)
and ``[cache]``, where the worker keeps them; ``Duration``, a duration written as Temporal
and Go write them ("30s", "1m30s", "500ms", "2h") or as a number of seconds."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

from agentflow.config._base import Seconds, StrictModel
from agentflow.config.formats import duration_seconds

DEFAULT_CACHE_PATH = ".agentflow/cache.sqlite"


def _seconds(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # a number of seconds (bounded by Seconds), or a wrong type it refuses
    seconds = duration_seconds(value)
    if seconds is None:
        raise ValueError(
            f'{value[:40]!r} is not a duration; write it like "30s", "1m30s", "500ms" or "2h" '
            "(a positive number and a unit: ns, us, ms, s, m, h)"
        )
    return seconds


# Seconds, from "1h" or 3600: above zero and within what Temporal can hold (Seconds's bounds).
Duration = Annotated[Seconds, BeforeValidator(_seconds)]


class CacheConfig(StrictModel):
    """``[agents.NAME] cache``: the agent's results are cached for ``ttl``, keyed by the
    agent, its resolved config and its input (state and event data); a hit does not run it."""

    # How long a result is kept: a duration ("30s", "1m30s", "1h") or a number of seconds.
    ttl: Duration


class CacheStoreConfig(StrictModel):
    """``[cache]``: where a worker keeps cached agent results when the flow has no filesystem
    ``[payloads]`` store (which holds them otherwise). A relative path is taken from the
    working directory of the process (the worker's, and ``agentflow cache clear``'s)."""

    # The SQLite file of cached results (a filesystem [payloads] store holds them instead).
    path: str = DEFAULT_CACHE_PATH
