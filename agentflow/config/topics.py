"""Topic names and subscription patterns, as in NATS.

A topic is dot-separated segments (``user.query``). A pattern may use ``*`` for exactly one
segment (``research.*`` matches ``research.complete``, not ``research`` nor ``research.a.b``)
and ``>`` as its last segment for one or more remaining segments (``user.>`` matches
``user.query`` and ``user.query.retry``). Pure functions: workflow code imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable

# A topic travels in event metadata, workflow ids and search attributes: keep it short.
MAX_TOPIC_BYTES = 255
ONE = "*"
REST = ">"


def topic_problem(name: str) -> str | None:
    """Why ``name`` cannot be published to (None when it can)."""
    problem = _shape_problem(name)
    if problem is None and any(seg in (ONE, REST) for seg in name.split(".")):
        return f"topic {name!r}: '*' and '>' are for subscriptions; publish to a concrete topic"
    return problem


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be subscribed to (None when it can)."""
    problem = _shape_problem(pattern)
    if problem is not None:
        return problem
    segments = pattern.split(".")
    for position, segment in enumerate(segments):
        if segment == REST and position != len(segments) - 1:
            return f"pattern {pattern!r}: '>' may only be the last segment"
        if segment not in (ONE, REST) and (ONE in segment or REST in segment):
            return f"pattern {pattern!r}: '*' and '>' must be whole segments (like 'a.*.c')"
    return None


def _shape_problem(name: str) -> str | None:
    if not name.strip():
        return "topic names must be non-empty strings"
    if len(name.encode("utf-8", errors="surrogatepass")) > MAX_TOPIC_BYTES:
        return f"topic {name[:40]!r}…: longer than {MAX_TOPIC_BYTES} bytes"
    if any(ch.isspace() or ch == "," or ord(ch) < 32 for ch in name):
        return (
            f"topic {name!r}: no commas, spaces or control characters (agents publish several "
            'topics as meta["publish"] = "a,b")'
        )
    if "" in name.split("."):
        return f"topic {name!r}: empty segment (dots separate non-empty segments)"
    return None


def matches(pattern: str, topic: str) -> bool:
    """Whether a subscription ``pattern`` matches a published ``topic``."""
    want, have = pattern.split("."), topic.split(".")
    for position, segment in enumerate(want):
        if segment == REST:
            return len(have) > position
        if position >= len(have) or (segment != ONE and segment != have[position]):
            return False
    return len(want) == len(have)


def matches_any(patterns: Iterable[str], topic: str) -> bool:
    """Whether any of ``patterns`` matches: overlapping patterns still mean one delivery."""
    return any(matches(pattern, topic) for pattern in patterns)


def check_patterns(patterns: list[str]) -> list[str]:
    """A pydantic validator body for ``subscribes`` / ``publishes`` lists."""
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem:
            raise ValueError(problem)
        if patterns.count(pattern) > 1:
            raise ValueError(f"topic {pattern!r} is listed twice")
    return patterns


def check_optional_patterns(patterns: list[str] | None) -> list[str] | None:
    """A pydantic validator body for ``publishes`` (None: any topic)."""
    return None if patterns is None else check_patterns(patterns)


def check_ordered(ordered: bool, subscribes: list[str], where: str) -> None:
    """``ordered`` orders bus deliveries, so it needs something subscribed."""
    if ordered and not subscribes:
        raise ValueError(f"ordered = true orders bus deliveries: give {where} subscribes")
