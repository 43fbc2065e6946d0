"""Errors that agentflow raises on purpose, and the ones handlers raise to stop retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """How long a provider that refused a request (429, 503) asked to be left alone:
    ``retry-after-ms``, or ``Retry-After`` in seconds, with lower-case keys. None when it said
    nothing usable (an HTTP date is left to the retry policy)."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        return max(0.0, float(headers["retry-after"])) if "retry-after" in headers else None
    except ValueError:
        return None


class AgentflowError(Exception):
    """Base class of every error agentflow raises on purpose."""


class NotFoundError(AgentflowError):
    """Temporal holds no such run, session or dead letter (a web API's 404)."""


class NoWorkerError(AgentflowError):
    """No worker polls (or answers on) the task queue that must answer a query or update."""


class ConfigError(AgentflowError):
    """An agentflow.toml that cannot run: the message names the file, the key and the fix."""


class FatalError(AgentflowError):
    """Raised by a handler for a failure that retrying cannot fix; the agent is not retried."""


class ApprovalRequired(AgentflowError):
    """Raised (or returned) by a handler that needs a person's approval to go on.

    The agent's call ends without failing; the run waits for ``agentflow approve``/``reject``
    (or the agent's ``on_timeout``). Once approved the handler is called again, with
    ``event.metadata["approved_by"]`` (and ``approval_comment``, ``approval_reason``) set.
    ``data`` (JSON, at most 16 KB) is shown to whoever decides.
    """

    def __init__(self, reason: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.data = dict(data or {})
