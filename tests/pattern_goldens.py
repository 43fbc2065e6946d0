"""Golden histories of pattern workflows (``[patterns.NAME]``, workflows/pattern.py), kept in
tests/histories/patterns/: a sequence that matches and publishes, then ends idle; an absence
whose window closes on its timer and publishes. Recorded by ``python -m tests.record_histories
patterns``; replayed by tests/test_replay.py."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from temporalio.client import Client, WorkflowHistory

from agentflow.client.bus_patterns import signal_pattern
from agentflow.config import parse_config
from agentflow.config.patterns import PatternConfig
from agentflow.models.bus import short_id
from agentflow.models.pattern import PatternEvent
from agentflow.names import pattern_workflow_id
from agentflow.worker.serve import serving
from tests.conftest import REPO

PATTERN_HISTORIES = Path(__file__).parent / "histories" / "patterns"
PATTERN_GOLDENS = ("patterns/sequence", "patterns/absence")
FLOW = "golden-patterns"


async def record_pattern_goldens(client: Client) -> dict[str, WorkflowHistory]:
    raw = {
        "agent_flow": {"name": FLOW},
        "orchestration": {"mode": "sequential", "sequential_agents": ["a"]},
        "agents": {"a": {"handler": "tests.agents:noop"}},
    }
    config = parse_config(raw, base_dir=REPO, check_handlers=True)
    patterns = {
        "sequence": PatternConfig(kind="sequence", topics=["golden.a", "golden.b"], within=30.0,
                                  key="data.k", publish="golden.matched"),
        "absence": PatternConfig(kind="absence", topics=["golden.a", "golden.b"], within=1.0,
                                 key="data.k", publish="golden.missing"),
    }  # fmt: skip
    histories: dict[str, WorkflowHistory] = {}
    async with serving(client, [(config, REPO)], task_queue="golden-patterns"):
        now = datetime.now(timezone.utc)
        events = {"sequence": ["golden.a", "golden.b"], "absence": ["golden.a"]}
        for name, pattern in patterns.items():
            for n, topic in enumerate(events[name]):
                event = PatternEvent(id=f"golden-{name}-{n}", topic=topic, at=now)
                await signal_pattern(client, FLOW, name, pattern, "k1", event)
            handle = client.get_workflow_handle(short_id(pattern_workflow_id(FLOW, name, "k1")))
            await handle.result()
            histories[f"patterns/{name}"] = await handle.fetch_history()
    return histories
