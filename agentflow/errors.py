"""Errors that agentflow raises on purpose, and the ones handlers raise to stop retries."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # models import config, which imports this module
    from agentflow.models import FlowResult


class AgentflowError(Exception):
    """Base class of every error agentflow raises on purpose."""


class ConfigError(AgentflowError):
    """An agentflow.toml that cannot run: the message names the file, the key and the fix."""


class FatalError(AgentflowError):
    """Raised by a handler for a failure that retrying cannot fix; the agent is not retried."""


class FlowFailedError(AgentflowError):
    """A flow run that ended in failure; ``result`` holds what was done before it failed."""

    def __init__(self, message: str, result: FlowResult) -> None:
        super().__init__(message)
        self.result = result
