"""The data that crosses the wire: pydantic models carried in Temporal payloads, one module
per concept (``flow``: events, state, results; ``session``: emitted events, sessions, dead
letters; ``approval``; ``bus``; ``llm`` and ``usage``; ``batch``; ``stream``). Every field
added later must be optional with a default: runs in flight carry the old shape."""

from agentflow.models.flow import (
    AgentResult,
    CallbackArgs,
    Event,
    FlowFailedError,
    FlowInput,
    FlowProgress,
    FlowResult,
    State,
)
from agentflow.models.session import DeadLetter, EventOutcome, SessionView
from agentflow.models.usage import Usage

__all__ = [
    "AgentResult",
    "CallbackArgs",
    "DeadLetter",
    "Event",
    "EventOutcome",
    "FlowFailedError",
    "FlowInput",
    "FlowProgress",
    "FlowResult",
    "SessionView",
    "State",
    "Usage",
]
