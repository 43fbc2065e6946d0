"""``[patterns.NAME]``: event patterns over time windows, correlated by a key. When one
matches, the bus publishes a derived event (``publish``) carrying the matched events' ids.

- ``kind = "sequence"``: ``topics`` (two or more), in that order, within ``within``;
- ``kind = "count"``: ``count`` (two or more) events of ``topic`` within ``within``;
- ``kind = "absence"``: ``topics = [FIRST, SECOND]``, the first not followed by the second
  within ``within`` (published when that window closes).

``key`` is a CEL expression over the event (agentflow/config/expressions.py), checked at load
(agentflow/config/expression_checks.py) and evaluated by the bus's fan-out activity. Pure
models: workflow code imports this module (the CEL check never runs in a validator here).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from agentflow.config._base import StrictModel
from agentflow.config.cache import Duration
from agentflow.config.topics import check_patterns, matches, topic_problem

PatternKind = Literal["sequence", "count", "absence"]


class PatternConfig(StrictModel):
    """``[patterns.NAME]``: an event pattern over a time window, matched per key by the bus;
    a match publishes ``publish`` with the matched events' ids (docs/bus.md "Patterns over
    time")."""

    # sequence: topics in order; count: one topic, count times; absence: FIRST without SECOND.
    kind: PatternKind
    # The watched topics or patterns (sequence: two or more; absence: exactly two).
    topics: list[str] = Field(default_factory=list)
    # The watched topic or pattern of kind = "count".
    topic: str | None = None
    # kind = "count": how many events of ``topic`` match (two or more).
    count: int | None = Field(None, ge=2, le=10_000)
    # The window: a duration ("10m", "30s") or a number of seconds.
    within: Duration
    # A CEL expression over the event (data, metadata, topic, id, source): events with the
    # same key are matched together, each key in its own workflow.
    key: str = Field(min_length=1)
    # The topic of the derived event published when the pattern matches.
    publish: str
    # Once no window is open, how long the key's workflow waits for its next event before it
    # ends: an event a retried fan-out sends again within it is recognised and dropped.
    linger: Duration = 30.0

    _topics = field_validator("topics")(check_patterns)

    @field_validator("publish")
    @classmethod
    def _concrete(cls, topic: str) -> str:
        if problem := topic_problem(topic):
            raise ValueError(problem)
        return topic

    @model_validator(mode="after")
    def _shape(self) -> PatternConfig:
        if self.kind == "count":
            if self.topic is None or self.count is None or self.topics:
                raise ValueError(
                    'kind = "count" takes topic = "..." and count = N (2 or more), not topics'
                )
            check_patterns([self.topic])
        elif self.topic is not None or self.count is not None:
            raise ValueError(f'kind = "{self.kind}" takes topics = [...], not topic or count')
        elif self.kind == "sequence" and len(self.topics) < 2:
            raise ValueError(f'kind = "sequence" takes two or more topics; got {len(self.topics)}')
        elif self.kind == "absence" and len(self.topics) != 2:
            raise ValueError(
                'kind = "absence" takes exactly two topics: [FIRST, SECOND] (FIRST not '
                f"followed by SECOND); got {len(self.topics)}"
            )
        return self

    @property
    def watched(self) -> list[str]:
        """The topics (or patterns) that feed the pattern."""
        return [self.topic] if self.topic is not None else list(self.topics)

    def feeds(self, topic: str) -> bool:
        return any(matches(pattern, topic) for pattern in self.watched)

    def steps(self, topic: str) -> list[int]:
        """The positions in ``topics`` (or 0 for ``topic``) that ``topic`` matches."""
        return [n for n, pattern in enumerate(self.watched) if matches(pattern, topic)]
