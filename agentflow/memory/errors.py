"""The two ways memory fails: for now (retry it) or until someone changes something."""

from __future__ import annotations

from agentflow.errors import AgentflowError


class MemoryUnavailable(AgentflowError):
    """The store or the embedding service cannot be reached now (connection refused, a 5xx,
    a timeout): a retry may succeed, so activities let Temporal retry it, no sooner than
    ``retry_after`` seconds when the service said (``Retry-After``)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MemorySetupError(AgentflowError):
    """A retry cannot help: a wrong dimension, a missing extension, a bad connection string,
    an unset ``${VAR}``, a refused API key. One line saying what is wrong."""
