"""Golden histories of pattern workflows (``[patterns.NAME]``, workflows/pattern.py), kept in
tests/histories/patterns/: a sequence that matches and publishes, then ends idle; an absence
whose window closes on its timer and publishes; a count run that takes more events than a run
holds at once, publishes one match and hands the others on through continue-as-new (handon);
a sequence that lingers after its match and drops an event sent again (linger).
Recorded by ``python -m tests.record_histories patterns``; replayed by tests/test_replay.py."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

from temporalio.api.history.v1 import WorkflowExecutionStartedEventAttributes
from temporalio.client import Client, WorkflowHistory

from agentflow.client.bus_patterns import signal_pattern
from agentflow.config import FlowConfig, parse_config
from agentflow.config.patterns import PatternConfig
from agentflow.models.bus import short_id
from agentflow.models.pattern import PatternEvent, PatternState, PatternView
from agentflow.names import PATTERN_QUERY, pattern_workflow_id
from agentflow.worker.serve import serving
from tests.conftest import REPO

PATTERN_HISTORIES = Path(__file__).parent / "histories" / "patterns"
PATTERN_GOLDENS = ("patterns/sequence", "patterns/absence", "patterns/handon", "patterns/linger")
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
                                  key="data.k", publish="golden.matched", linger=0.2),
        "absence": PatternConfig(kind="absence", topics=["golden.a", "golden.b"], within=1.0,
                                 key="data.k", publish="golden.missing", linger=0.2),
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
    histories["patterns/handon"] = await record_hand_on(client, config)
    histories["patterns/linger"] = await record_linger(client, config)
    return histories


async def record_linger(client: Client, config: FlowConfig) -> WorkflowHistory:
    """A sequence that matches; while the workflow lingers (no window open), the last event
    comes again, as from a retried fan-out: dropped as seen; then it lingers again and ends."""
    pattern = PatternConfig(kind="sequence", topics=["golden.a", "golden.b"], within=30.0,
                            key="data.k", publish="golden.lingered", linger=3.0)  # fmt: skip
    now = datetime.now(timezone.utc)
    events = [PatternEvent(id=f"golden-linger-{n}", topic=t, at=now)
              for n, t in enumerate(["golden.a", "golden.b"])]  # fmt: skip
    handle = client.get_workflow_handle(short_id(pattern_workflow_id(FLOW, "linger", "k1")))
    async with serving(client, [(config, REPO)], task_queue="golden-patterns"):
        for event in events:
            await signal_pattern(client, FLOW, "linger", pattern, "k1", event)
        while (await handle.query(PATTERN_QUERY, result_type=PatternView)).matches < 1:
            await asyncio.sleep(0.05)
        await signal_pattern(client, FLOW, "linger", pattern, "k1", events[-1])
        await handle.result()
    return await handle.fetch_history()


def attributes(run: WorkflowHistory) -> WorkflowExecutionStartedEventAttributes:
    return run.events[0].workflow_execution_started_event_attributes


async def record_hand_on(client: Client, config: FlowConfig) -> WorkflowHistory:
    """Six events signalled before a worker runs, so the first run takes them at once: three
    matches of two, a run of three events; it publishes one and hands two on."""
    pattern = PatternConfig(kind="count", topic="golden.c", count=2, within=30.0, key="data.k",
                            publish="golden.counted")  # fmt: skip
    state = PatternState(flow=FLOW, name="handon", key="k1", config=pattern, events_per_run=3)
    now = datetime.now(timezone.utc)
    for n in range(6):
        event = PatternEvent(id=f"golden-handon-{n}", topic="golden.c", at=now)
        await signal_pattern(client, FLOW, "handon", pattern, "k1", event, state)
    workflow_id = short_id(pattern_workflow_id(FLOW, "handon", "k1"))
    async with serving(client, [(config, REPO)], task_queue="golden-patterns"):
        await client.get_workflow_handle(workflow_id).result()
    run = await client.get_workflow_handle(workflow_id).fetch_history()
    while first := attributes(run).continued_execution_run_id:  # back to the first run
        run = await client.get_workflow_handle(workflow_id, run_id=first).fetch_history()
    return run
