"""Worker log lines that say which run, agent and attempt they are about.

Temporal's ``workflow.logger`` and ``activity.logger`` put the run's details in the record's
``extra`` (``temporal_workflow`` / ``temporal_activity``); agentflow adds ``agent``. This
filter lifts them into plain fields so one format string shows them on every line.
"""

from __future__ import annotations

import json
import logging
import logging.handlers

from agentflow.config.runtime import LoggingConfig

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
        # An agent in a batch of local agents counts its own (agentflow/telemetry.py).
        record.attempt = getattr(record, "agent_attempt", None) or activity.get("attempt", "-")
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


class JsonLines(logging.Formatter):
    """``[logging] format = "json"``: one JSON object per line, with the run's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", "-"),
            "agent": getattr(record, "agent", "-"),
            "attempt": getattr(record, "attempt", "-"),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(settings: LoggingConfig) -> None:
    """The worker's logs as ``[logging]`` says: level, json or console lines, and optionally
    a rotated file (``file``, ``max_size`` MB, ``max_backups``; ``file_only``: no console)."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, settings.level.upper()))
    if not root.handlers and not settings.file_only:
        root.addHandler(logging.StreamHandler())
    if settings.file_only:
        for handler in list(root.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ):
                root.removeHandler(handler)
    if settings.file:
        root.addHandler(
            logging.handlers.RotatingFileHandler(
                settings.file,
                maxBytes=settings.max_size * 1024 * 1024,
                backupCount=settings.max_backups,
                encoding="utf-8",
            )
        )
    formatter = JsonLines() if settings.format == "json" else logging.Formatter(FORMAT)
    for handler in root.handlers:
        if not any(isinstance(f, RunContext) for f in handler.filters):
            handler.addFilter(RunContext())
        handler.setFormatter(formatter)
