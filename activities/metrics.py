"""How every agent attempt is measured inside the worker: its OpenTelemetry span, its duration
and error metrics, and its started/completed/failed log lines. The worker's telemetry
(``agentflow.worker.telemetry``) installs the providers and wraps agent activities with this;
a batch of local agents (activities/batch.py) wraps each of its agents the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import NamedTuple

from opentelemetry import metrics, trace
from temporalio import activity

from agentflow.names import INSTRUMENTATION


class _Instruments(NamedTuple):
    tracer_provider: object
    meter_provider: object
    tracer: trace.Tracer | None  # None: no provider installed, so no span is recorded
    errors: metrics.Counter
    duration: metrics.Histogram


_instruments: _Instruments | None = None


def _current() -> _Instruments:
    """The tracer and instruments of the global providers, looked up again only when those
    changed: the providers may be installed after the worker starts (or replaced, in tests), and
    a lookup per call costs a new tracer and meter (and, before any provider is installed, a
    proxy meter that the global proxy provider keeps for good: one per agent call). With no
    tracer provider installed there is no span to record (the proxy's would be a no-op one,
    with the parent's context): none is started."""
    global _instruments
    tracers, meters = trace.get_tracer_provider(), metrics.get_meter_provider()
    held = _instruments
    if held is None or held.tracer_provider is not tracers or held.meter_provider is not meters:
        meter = meters.get_meter(INSTRUMENTATION)
        traced = not isinstance(tracers, trace.ProxyTracerProvider)  # the proxy: none installed
        held = _instruments = _Instruments(
            tracers, meters, tracers.get_tracer(INSTRUMENTATION) if traced else None,
            meter.create_counter("agentflow.agent.errors", "{error}"),
            meter.create_histogram("agentflow.agent.duration", "ms"),
        )  # fmt: skip
    return held


@contextmanager
def measured_agent(agent: str, flow: str, attempt: int) -> Iterator[None]:
    """One attempt of one agent call: the "agent NAME" span (a child of the current span),
    the duration and error metrics and the started/completed/failed log lines. Used around
    every agent activity (``_AgentCall``) and every agent inside a batch (activities/batch.py),
    so an agent is measured the same way wherever it runs. Call it inside an activity."""
    measure = _current()
    labels = {"agent": agent, "flow": flow}
    log = {"agent": agent, "agent_attempt": attempt}  # in a batch: the agent's own attempt
    activity.logger.info("agent %s started", agent, extra=log)
    started = time.monotonic()
    with (
        nullcontext()
        if measure.tracer is None
        else measure.tracer.start_as_current_span(
            f"agent {agent}", attributes={**labels, "attempt": attempt}
        )
    ):
        try:
            yield
        except Exception as err:
            measure.errors.add(
                1, {**labels, "error.type": getattr(err, "type", None) or type(err).__name__}
            )
            activity.logger.warning("agent %s failed: %s", agent, err, extra=log)
            raise
        finally:
            elapsed = (time.monotonic() - started) * 1000
            measure.duration.record(elapsed, labels)
    activity.logger.info("agent %s completed in %.1f ms", agent, elapsed, extra=log)
