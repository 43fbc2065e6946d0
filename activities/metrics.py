"""How every agent attempt is measured inside the worker: its OpenTelemetry span, its duration
and error metrics, and its started/completed/failed log lines. The worker's telemetry
(``agentflow.worker.telemetry``) installs the providers and wraps agent activities with this;
a batch of local agents (activities/batch.py) wraps each of its agents the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import metrics, trace
from temporalio import activity

from agentflow.names import INSTRUMENTATION


@contextmanager
def measured_agent(agent: str, flow: str, attempt: int) -> Iterator[None]:
    """One attempt of one agent call: the "agent NAME" span (a child of the current span),
    the duration and error metrics and the started/completed/failed log lines. Used around
    every agent activity (``_AgentCall``) and every agent inside a batch (activities/batch.py),
    so an agent is measured the same way wherever it runs. Call it inside an activity."""
    # Looked up per call: the global providers may be installed after the worker starts.
    tracer = trace.get_tracer(INSTRUMENTATION)
    meter = metrics.get_meter(INSTRUMENTATION)
    labels = {"agent": agent, "flow": flow}
    log = {"agent": agent, "agent_attempt": attempt}  # in a batch: the agent's own attempt
    activity.logger.info("agent %s started", agent, extra=log)
    started = time.monotonic()
    with tracer.start_as_current_span(f"agent {agent}", attributes={**labels, "attempt": attempt}):
        try:
            yield
        except Exception as err:
            meter.create_counter("agentflow.agent.errors", "{error}").add(
                1, {**labels, "error.type": getattr(err, "type", None) or type(err).__name__}
            )
            activity.logger.warning("agent %s failed: %s", agent, err, extra=log)
            raise
        finally:
            elapsed = (time.monotonic() - started) * 1000
            meter.create_histogram("agentflow.agent.duration", "ms").record(elapsed, labels)
    activity.logger.info("agent %s completed in %.1f ms", agent, elapsed, extra=log)
