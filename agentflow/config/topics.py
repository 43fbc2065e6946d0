"""Topic names and subscription patterns, as in NATS.

A topic is dot-separated segments (``user.query``). A pattern may use ``*`` for exactly one
segment (``research.*`` matches ``research.complete``, not ``research`` nor ``research.a.b``)
and ``>`` as its last segment for one or more remaining segments (``user.>`` matches
``user.query`` and ``user.query.retry``). Pure functions: workflow code imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from agentflow.config._base import StrictModel

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


class TopicFilter(StrictModel):
    """A subscription with a condition: ``{ topic = "order.*", when = "data.total > 100" }``.
    ``when`` is a CEL expression on the event (agentflow/config/expressions.py), checked at
    load and evaluated by the bus's fan-out activity, never in workflow code."""

    topic: str
    when: str


Subscription = str | TopicFilter


def patterns_of(subscriptions: Sequence[Subscription]) -> list[str]:
    """The topics and patterns of a ``subscribes`` list, filtered or not."""
    return [sub if isinstance(sub, str) else sub.topic for sub in subscriptions]


def filters_of(subscriptions: Sequence[Subscription]) -> dict[str, str]:
    """Pattern -> ``when`` of the filtered entries of a ``subscribes`` list."""
    return {sub.topic: sub.when for sub in subscriptions if isinstance(sub, TopicFilter)}


def matches_unfiltered(subscriptions: Sequence[Subscription], topic: str) -> bool:
    """Whether an entry without ``when`` matches ``topic``: such a subscriber gets the event
    whatever its filters say (so it may get it within the publishing run)."""
    return any(isinstance(sub, str) and matches(sub, topic) for sub in subscriptions)


def subscription_entries(value: object) -> object:
    """A ``mode="before"`` validator body for ``subscribes``: each entry a string or a
    ``{ topic, when }`` table, with one message for anything else (not one per form)."""
    if isinstance(value, list):
        for index, entry in enumerate(value):
            if not isinstance(entry, (str, dict, TopicFilter)):
                raise ValueError(
                    f"entry {index} ({entry!r}) is neither a topic or pattern nor a table "
                    '{ topic = "...", when = "..." }'
                )
            if isinstance(entry, dict) and sorted(entry) != ["topic", "when"]:
                raise ValueError(
                    f"entry {index}: a filtered subscription has exactly the keys topic and "
                    f"when (a CEL expression); got {', '.join(sorted(map(str, entry))) or 'none'}"
                )
    return value


def check_subscriptions(subscriptions: list[Subscription]) -> list[Subscription]:
    """A pydantic validator body for ``subscribes`` (strings and ``{topic, when}`` tables)."""
    check_patterns(patterns_of(subscriptions))
    return subscriptions


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


def check_ordered(ordered: bool, subscribes: Sequence[object], where: str) -> None:
    """``ordered`` orders bus deliveries, so it needs something subscribed."""
    if ordered and not subscribes:
        raise ValueError(f"ordered = true orders bus deliveries: give {where} subscribes")


# ``accepts_from``: who a subscriber takes events from, as the bus names publishers: an agent
# ``FLOW.AGENT`` or a client ``client IDENTITY`` (identity: pid@host unless the client set one).
CLIENT = "client "


def accepts(patterns: Sequence[str], publisher: str) -> bool:
    """Whether a publisher is one of ``patterns`` (globs: ``"billing.*"``, ``"client *"``)."""
    return any(fnmatchcase(publisher, pattern) for pattern in patterns)


def check_accepts_from(patterns: list[str] | None) -> list[str] | None:
    """A pydantic validator body for ``accepts_from``: each entry an agent or a client."""
    if patterns is None:
        return None
    if not patterns:
        raise ValueError("accepts_from = [] accepts nothing; leave it out to accept anyone")
    for entry in patterns:
        if entry.startswith(CLIENT):
            if not entry[len(CLIENT) :].strip():
                raise ValueError(f'{entry!r}: name the client ("client *": any client)')
            continue
        flow, dot, agent = entry.partition(".")
        if not dot or not flow or not agent or any(ch.isspace() for ch in entry):
            raise ValueError(
                f'{entry!r} names no publisher: give an agent as "FLOW.AGENT" (globs: '
                '"billing.*") or a client as "client IDENTITY" ("client *": any client)'
            )
    return patterns
