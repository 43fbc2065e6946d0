"""``[bus]``: this flow on the durable bus, as a subscriber and as a client that publishes."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from agentflow.config._base import StrictModel
from agentflow.config.topics import (
    Subscription,
    check_accepts_from,
    check_optional_patterns,
    check_ordered,
    check_subscriptions,
    subscription_entries,
)


class BusConfig(StrictModel):
    """``[bus]``. Agents subscribe with ``subscribes`` in their own table; this table is for
    the flow as a whole and for the clients (CLI, ``Runner.publish``) built from this file."""

    # Topics (or patterns) that start this whole flow: each matching event runs it.
    subscribes: list[Subscription] = Field(default_factory=list)
    # The flow's deliveries with the same key arrive in publish order.
    ordered: bool = False
    # Topics (or patterns) clients may publish to; None: any topic.
    publishes: list[str] | None = None
    # Per subscriber of this flow: how many deliveries run at once (each slot a session that
    # takes one event at a time); ordered subscribers keep a key's events in one slot.
    max_parallel: int = Field(8, gt=0, le=256)

    # The publishers whose events it takes ("FLOW.AGENT", "client *"; globs); None: anyone.
    # Others are dead-lettered by the bus ("publisher refused").
    accepts_from: list[str] | None = None
    _accepts = field_validator("accepts_from")(check_accepts_from)
    _entries = field_validator("subscribes", mode="before")(subscription_entries)
    _topics = field_validator("subscribes")(check_subscriptions)

    _publishes = field_validator("publishes")(check_optional_patterns)

    @model_validator(mode="after")
    def _ordered_needs_topics(self) -> BusConfig:
        check_ordered(self.ordered, self.subscribes, "[bus]")
        return self
