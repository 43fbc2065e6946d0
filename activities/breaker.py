"""Circuit breakers of agents and LLM providers, inside the agent activity.

A breaker counts the failed calls of its agent (or of every LLM agent using its provider):
``failures`` of them ``within`` the window open it. While open, a call fails at once with
``CircuitOpen``, a retryable ApplicationError whose ``next_retry_delay`` is the time left until
the breaker half-opens, so Temporal's retry of the activity comes back just then (each such
attempt counts toward the agent's retry attempts); with ``fallback_agent``, the call runs that
agent instead. Half-open, one call goes through: success closes the breaker, failure opens it
again for ``open_for``. Calls that arrive while the trial runs fail fast until it ends.

Where the state lives (why): in memory, per worker (one ``Breakers`` per AgentActivities, so
per worker process as agentflow starts them). Its failure counts are that worker's own
evidence about a dependency as it sees it from there; no store is shared, so a breaker costs
no I/O per call and keeps working when the failing thing is the network. The price: N workers
open N breakers, each after its own ``failures``; a restarted worker starts closed.

Every state change is logged (a warning), counted (``agentflow.circuit_breaker.changes``, by
breaker and state) and shown in the trace of the run whose call made it: a failure that
opened a breaker says so in its message; a call that closed one, or ran the fallback agent,
says so in its completed line (``AgentOutput.breaker``).
"""

from __future__ import annotations

import time
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta

from opentelemetry import metrics
from temporalio import activity
from temporalio.exceptions import ApplicationError

from agentflow.config.breaker import BreakerConfig
from agentflow.config.flow import FlowConfig
from agentflow.models.flow import AgentInput
from agentflow.names import INSTRUMENTATION

CIRCUIT_OPEN = "CircuitOpen"


@dataclass
class Breaker:
    """One breaker's state: ``closed``, ``open`` or ``half-open``."""

    name: str  # "agent 'x'" or "provider 'openai'"
    settings: BreakerConfig
    flow: str = ""
    state: str = "closed"
    failed_at: deque[float] = field(default_factory=deque)
    opened_at: float = 0.0
    trial_at: float | None = None  # half-open: when the trial call started

    def closed_in(self, now: float) -> float | None:
        """None when a call may go through now, else the seconds until it may."""
        if self.state == "open":
            left = self.opened_at + self.settings.open_for - now
            if left > 0:
                return left
            self._change("half-open")
        if self.state == "half-open":
            # One trial at a time; a trial that never reported (its attempt was lost with
            # its worker's task, say) is given up after open_for.
            if self.trial_at is not None and now - self.trial_at < self.settings.open_for:
                return min(self.settings.open_for, 1.0)  # the trial decides soon
            self.trial_at = now
        return None

    def succeeded(self) -> str | None:
        """A call went through; the change it made, if any."""
        self.trial_at = None
        if self.state == "half-open":
            self.failed_at.clear()
            return self._change("closed")
        return None

    def failed(self, now: float) -> str | None:
        """A call failed; the change it made, if any."""
        self.trial_at = None
        if self.state == "half-open":
            self.opened_at = now
            return self._change("open")
        self.failed_at.append(now)
        while self.failed_at and self.failed_at[0] <= now - self.settings.within:
            self.failed_at.popleft()
        if self.state == "closed" and len(self.failed_at) >= self.settings.failures:
            self.opened_at = now
            return self._change("open")
        return None

    def _change(self, state: str) -> str:
        self.state = state
        note = f"circuit breaker of {self.name} {'half-opened' if state == 'half-open' else state}"
        if state == "open":
            note += f" for {self.settings.open_for:g}s"
        labels = {"breaker": self.name, "flow": self.flow, "state": state}
        activity.logger.warning("%s", note, extra={"breaker": self.name, "breaker_state": state})
        meter = metrics.get_meter(INSTRUMENTATION)
        meter.create_counter("agentflow.circuit_breaker.changes", "{change}").add(1, labels)
        return note


def provider_breaker(config: FlowConfig | None, provider: str) -> BreakerConfig | None:
    """The breaker of ``provider`` in the worker's flow file: ``[providers.NAME]
    circuit_breaker``, else ``[llm]``'s when ``[llm]`` names that provider (or names none)."""
    if config is None:
        return None
    table = config.providers.get(provider)
    if table is not None and table.circuit_breaker is not None:
        return table.circuit_breaker
    llm = config.llm
    if llm is not None and llm.provider in ("", provider):
        return llm.circuit_breaker
    return None


class Breakers:
    """A worker's breakers, by flow and agent or provider (in memory: see the module doc)."""

    def __init__(self) -> None:
        self._breakers: dict[tuple[str, str], Breaker] = {}

    def of(self, request: AgentInput, config: FlowConfig | None) -> list[Breaker]:
        """The breakers a call of ``request`` passes: its agent's, its provider's."""
        found = []
        if (own := request.spec.circuit_breaker) is not None:
            found.append(self._get(request.flow, f"agent {request.agent!r}", own))
        if request.model is not None:  # an LLM agent: every model step calls its provider
            provider = request.model.provider
            if (settings := provider_breaker(config, provider)) is not None:
                found.append(self._get(request.flow, f"provider {provider!r}", settings))
        return found

    def _get(self, flow: str, name: str, settings: BreakerConfig) -> Breaker:
        breaker = self._breakers.get((flow, name))
        if breaker is None or breaker.settings != settings:  # new, or its config changed
            breaker = self._breakers[(flow, name)] = Breaker(name, settings, flow)
        return breaker


def fail_fast(breakers: list[Breaker]) -> ApplicationError | None:
    """``CircuitOpen`` when any of ``breakers`` is open, else None (trials are taken)."""
    now = time.monotonic()
    for breaker in breakers:
        left = breaker.closed_in(now)
        if left is not None:
            for taken in breakers[: breakers.index(breaker)]:  # give their trials back
                taken.trial_at = None
            return ApplicationError(
                f"circuit breaker of {breaker.name} is open: the call fails fast, and is "
                f"retried when it half-opens in {left:.1f}s",
                type=CIRCUIT_OPEN,
                next_retry_delay=timedelta(seconds=max(left, 0.001)),
            )
    return None


def after_success(breakers: list[Breaker]) -> str | None:
    notes = [note for breaker in breakers if (note := breaker.succeeded())]
    return "; ".join(notes) or None


def after_failure(breakers: list[Breaker], failure: ApplicationError) -> ApplicationError:
    """Count a failed call (not a non-retryable one: the agent decided, its dependency did
    not fail); when it opened a breaker, the failure says so, and Temporal retries it once
    the breaker half-opens."""
    if failure.non_retryable:
        for breaker in breakers:
            breaker.trial_at = None
        return failure
    now = time.monotonic()
    notes = [note for breaker in breakers if (note := breaker.failed(now))]
    if not notes:
        return failure
    opened = [b.settings.open_for for b in breakers if b.state == "open"]
    return ApplicationError(
        f"{failure.message} ({'; '.join(notes)})",
        *failure.details,
        type=failure.type,
        next_retry_delay=timedelta(seconds=max(opened)) if opened else failure.next_retry_delay,
    )


# Set while a fallback agent runs in its breaker's agent's place: it falls back no further.
FALLING_BACK: ContextVar[bool] = ContextVar("falling_back", default=False)


def fallback_request(request: AgentInput, config: FlowConfig | None) -> AgentInput | None:
    """The call of ``request``'s ``fallback_agent`` (a handler agent of the worker's flow
    file) in its place; None when it has none, or is a fallback itself."""
    own = request.spec.circuit_breaker
    fallback = own.fallback_agent if own else None
    if fallback is None or FALLING_BACK.get() or config is None:
        return None
    spec = config.agents.get(fallback)
    if spec is None or spec.handler is None:
        return None
    return request.model_copy(
        update={"agent": fallback, "spec": spec, "model": None, "mcp": None, "memory": None}
    )
