"""OpenTelemetry for agentflow: spans for each flow run and agent call, agent metrics.

``[telemetry] exporter = "none" | "console" | "otlp"``. The tracer provider is installed
before the client connects, and Temporal's ``TracingInterceptor`` links the spans across
client (StartWorkflow), workflow (RunWorkflow, StartActivity) and activity (RunActivity).
Why the interceptor and not the newer, experimental ``OpenTelemetryPlugin``: its workflow
spans appear at once and it needs no replay-safe global provider; it creates workflow spans
only when not replaying, so a replayed workflow adds no spans. ``AgentCallInterceptor``
(always on, see AgentflowPlugin) adds the "agent NAME" span, the metrics and the log lines
(``measured_agent``, which a batch of local agents uses for each of its agents).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from temporalio.contrib.opentelemetry import TracingInterceptor

from agentflow.config import TelemetryConfig
from agentflow.errors import ConfigError
from agentflow.names import INSTRUMENTATION


@dataclass
class Telemetry:
    """The installed providers and the interceptor to give the Temporal client."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    interceptors: list[Any] = field(default_factory=list)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


_installed: Telemetry | None = None


def setup(
    config: TelemetryConfig,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> Telemetry | None:
    """Install global providers for ``config`` (once per process); None when disabled.

    Tests pass an in-memory ``span_exporter`` / ``metric_reader`` instead of the configured one.
    """
    global _installed
    if _installed is not None:
        return _installed
    if config.exporter == "none" and span_exporter is None:
        return None
    resource = Resource.create({"service.name": config.service_name})
    tracer_provider = TracerProvider(resource=resource)
    reader = metric_reader
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    elif config.exporter == "console":
        tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        reader = PeriodicExportingMetricReader(ConsoleMetricExporter())
    else:
        spans, metric_exporter = _otlp(config)
        tracer_provider.add_span_processor(BatchSpanProcessor(spans))
        reader = PeriodicExportingMetricReader(metric_exporter)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader] if reader else [])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    interceptor = TracingInterceptor(tracer_provider.get_tracer(INSTRUMENTATION))
    _installed = Telemetry(tracer_provider, meter_provider, [interceptor])
    return _installed


def interceptors(config: TelemetryConfig) -> Sequence[Any]:
    """What ``connect`` adds to the client (workers built from it inherit them)."""
    installed = setup(config)
    return installed.interceptors if installed else []


def _otlp(config: TelemetryConfig) -> tuple[Any, Any]:
    try:  # an optional dependency: agentflow[otlp]
        http = "opentelemetry.exporter.otlp.proto.http"
        span_exporter = importlib.import_module(f"{http}.trace_exporter").OTLPSpanExporter
        metric_exporter = importlib.import_module(f"{http}.metric_exporter").OTLPMetricExporter
    except ImportError:
        raise ConfigError(
            'telemetry.exporter = "otlp" needs the OTLP exporter: '
            "pip install 'agentflow[otlp]' (opentelemetry-exporter-otlp-proto-http)"
        ) from None
    base = config.endpoint.rstrip("/") if config.endpoint else None
    headers = config.headers or None
    return (
        span_exporter(endpoint=f"{base}/v1/traces" if base else None, headers=headers),
        metric_exporter(endpoint=f"{base}/v1/metrics" if base else None, headers=headers),
    )
