"""Worker log lines that say which run, agent and attempt they are about.

Temporal's ``workflow.logger`` and ``activity.logger`` put the run's details in the record's
``extra`` (``temporal_workflow`` / ``temporal_activity``); agentflow adds ``agent``. This
filter lifts them into plain fields so one format string shows them on every line.
"""

from __future__ import annotations

import logging

FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [run=%(run_id)s agent=%(agent)s attempt=%(attempt)s] "
    "%(message)s"
)


class RunContext(logging.Filter):
    """Adds ``run_id``, ``agent`` and ``attempt`` (``-`` when a line has none) to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        activity = getattr(record, "temporal_activity", None) or {}
        workflow = getattr(record, "temporal_workflow", None) or {}
        record.run_id = activity.get("workflow_run_id") or workflow.get("run_id") or "-"
        record.agent = getattr(record, "agent", None) or "-"
        # A workflow's own "attempt" is its task's, not the agent's: only activities have one.
        record.attempt = activity.get("attempt", "-")
        return True


def log_context(level: int = logging.INFO) -> None:
    """Give the root logger's handlers the run/agent/attempt format (idempotent)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level)
    for handler in root.handlers:
        if not any(isinstance(f, RunContext) for f in handler.filters):
            handler.addFilter(RunContext())
        handler.setFormatter(logging.Formatter(FORMAT))
