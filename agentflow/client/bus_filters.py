"""The fan-out's checks, before it delivers an event (agentflow/client/bus.py ``fan_out``):

- **Signature** (``[security] signing_keys_env``): a worker with signing keys delivers nothing
  of an event whose signature does not hold (unsigned, forged, tampered); the bus dead-letters
  it, reason "signature invalid".
- **accepts_from**: a subscriber whose list does not name the publisher gets nothing.
- **Filters** (``subscribes = [{ topic = "order.*", when = "..." }]``): CEL, checked when the
  subscriber's config was loaded; here they meet the event. One that cannot be evaluated on it
  (a missing field, a wrong type) delivers nothing to that subscriber.

Refused or failed subscribers do not stop the others: the fan-out delivers to them, then fails
for good and the bus dead-letters the event once (reason "publisher refused" or "expression
failed"), naming each subscriber and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from agentflow.client.signing import ring_of
from agentflow.config.expressions import ExpressionFailed, evaluate, event_variables
from agentflow.models.bus import (
    EXPRESSION_FAILED,
    PUBLISHER_REFUSED,
    SIGNATURE_INVALID,
    PublishRequest,
    Subscriber,
)
from agentflow.models.flow import Event


@dataclass
class Refused:
    """The subscribers that did not get the event, and why."""

    lines: list[str] = field(default_factory=list)
    error_type: str = ""

    def add(self, line: str, error_type: str) -> None:
        self.lines.append(line)
        self.error_type = self.error_type or error_type

    @property
    def message(self) -> str:
        return "; ".join(self.lines)

    def __bool__(self) -> bool:
        return bool(self.lines)


def verify(client: Client, request: PublishRequest) -> None:
    """Raise (for good) when this worker signs and ``request``'s signature does not hold."""
    ring = ring_of(client)
    if ring is not None and (problem := ring.problem(request)):
        raise ApplicationError(
            f"signature invalid: {problem}", type=SIGNATURE_INVALID, non_retryable=True
        )


def filtered(
    subs: list[Subscriber], event: Event, request: PublishRequest
) -> tuple[list[Subscriber], Refused]:
    """The subscribers that take ``event`` (the bus's, with its topic and publisher): their
    ``accepts_from`` names the publisher and their filters let it through. A filter's
    ``metadata``: the publish's own metadata, then the bus's keys."""
    topic, publisher = request.topic, request.publisher
    metadata = {**request.metadata, **event.metadata}
    variables = event_variables(dict(request.data), metadata, topic, event.id, publisher)
    passed: list[Subscriber] = []
    refused = Refused()
    for sub in subs:
        if not sub.accepts(publisher):
            accepted = ", ".join(sub.accepts_from or [])
            refused.add(
                f"subscriber {sub.name} does not accept publisher {publisher!r} (accepts_from: "
                f"{accepted})",
                PUBLISHER_REFUSED,
            )
            continue
        conditions = sub.conditions(topic)
        try:
            if not conditions or any(evaluate(when, variables) for when in conditions):
                passed.append(sub)
        except ExpressionFailed as err:
            refused.add(f"subscriber {sub.name}: when {err}", EXPRESSION_FAILED)
    return passed, refused
