"""Serving flows: the plugin that adds agentflow to any Temporal worker, the worker the
``agentflow worker`` command runs, and what it sets up around them (sandbox runner, telemetry,
log lines, rate limits, the shared bus worker)."""

from agentflow.worker.plugin import ALL_WORKFLOWS, AgentflowPlugin
from agentflow.worker.serve import build_worker, run_worker, serving

__all__ = ["ALL_WORKFLOWS", "AgentflowPlugin", "build_worker", "run_worker", "serving"]
