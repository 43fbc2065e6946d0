"""A subscriber of patterns' derived events for tests/test_patterns.py: each event it gets is a
JSON line in ``LOG_DIR/FLOW.jsonl`` (FLOW: the flow whose pattern matched), from this process
or a worker subprocess (which inherits ``AGENTFLOW_TEST_PATTERN_LOGS``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from agentflow import Event, State

LOG_DIR = Path(
    os.environ.get("AGENTFLOW_TEST_PATTERN_LOGS")
    or Path(tempfile.gettempdir()) / "agentflow-test-patterns"
)


def log_of(flow: str) -> Path:
    return LOG_DIR / f"{flow}.jsonl"


def derived(event: Event, state: State) -> dict[str, Any]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    line = {"topic": event.metadata.get("topic"), "publisher": event.metadata.get("publisher"),
            "parent_event": event.metadata.get("parent_event"), **state.data}  # fmt: skip
    with log_of(str(state.data["flow"])).open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
    return {"seen": True}


def lines(flow: str) -> list[dict[str, Any]]:
    path = log_of(flow)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
