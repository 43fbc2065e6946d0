"""A burst into one key of a count pattern and one of a sequence pattern, with a run of
``EVENTS_PER_RUN`` events: each pattern workflow continues as new many times, every run's
history stays under a bound set by ``events_per_run``, and the matches are right across the
runs (no event lost, none applied twice, a repeated signal dropped). The full size, 10,000
events over 1,000 keys through the bus, is W16 in bench/ (bench/patterns.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import WorkflowExecutionStartedEventAttributes
from temporalio.client import Client, WorkflowHistory

from agentflow.client.bus_patterns import signal_pattern
from agentflow.client.patterns import open_windows
from agentflow.config.patterns import PatternConfig
from agentflow.models.bus import short_id
from agentflow.models.pattern import PatternEvent, PatternState
from agentflow.names import pattern_workflow_id
from tests.pattern_agents import lines
from tests.test_bus_durable import served, unique, until
from tests.test_patterns import pattern_flow

EVENTS_PER_RUN = 20
SIGNALED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
EVENTS = 121  # per key: 40 counts of 3 or 60 pairs, then one event left in an open window
# A run takes EVENTS_PER_RUN signals, and those that arrive while it publishes its last match
# (a full run hands its other matches on): here fewer than EVENTS_PER_RUN more.
SIGNALS_BOUND = 2 * EVENTS_PER_RUN
# Its history: its start, a marker and its end, and per signal at most the signal, a workflow
# task (scheduled, started, completed) and its share of a match's publish (an activity and the
# workflow task after it: 6 events per match, a match every 2 events at most).
HISTORY_BOUND = SIGNALS_BOUND * (1 + 3 + 6 // 2) + 10


def started(run: WorkflowHistory) -> WorkflowExecutionStartedEventAttributes:
    return run.events[0].workflow_execution_started_event_attributes


async def chain(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of ``workflow_id``, newest first, followed back through continue-as-new."""
    runs = [await client.get_workflow_handle(workflow_id).fetch_history()]
    while previous := started(runs[-1]).continued_execution_run_id:
        runs.append(await client.get_workflow_handle(workflow_id, run_id=previous).fetch_history())
    return runs


async def test_a_burst_continues_as_new_with_bounded_runs_and_exact_matches(
    client: Client,
) -> None:
    p = unique("pb")
    flow = pattern_flow(unique("burst"), p, {})
    configs = {
        "cnt": PatternConfig(kind="count", topic=f"{p}.hit", count=3, within=600.0,
                             key="data.k", publish=f"{p}.derived.cnt", linger=600.0),
        "seq": PatternConfig(kind="sequence", topics=[f"{p}.a", f"{p}.b"], within=600.0,
                             key="data.k", publish=f"{p}.derived.seq", linger=600.0),
    }  # fmt: skip

    def topic(name: str, n: int) -> str:
        return f"{p}.hit" if name == "cnt" else f"{p}.{'ab'[n % 2]}"

    keys = ["k0"]
    start = datetime.now(timezone.utc)
    sent: dict[tuple[str, str], list[str]] = {}

    async def burst(name: str, key: str) -> None:
        state = PatternState(flow=flow.name, name=name, key=key, config=configs[name],
                             events_per_run=EVENTS_PER_RUN)  # fmt: skip
        ids = sent.setdefault((name, key), [])
        for n in range(EVENTS):
            event = PatternEvent(id=f"{p}-{name}-{key}-{n}", topic=topic(name, n),
                                 at=start + timedelta(milliseconds=n))  # fmt: skip
            ids.append(event.id)
            await signal_pattern(client, flow.name, name, configs[name], key, event, state)
            if n % 7 == 6:  # a retried fan-out: the same event again
                await signal_pattern(client, flow.name, name, configs[name], key, event, state)

    async with served(client, flow):
        await asyncio.gather(*(burst(name, key) for name in configs for key in keys))
        size = {"cnt": 3, "seq": 2}
        want = sum(EVENTS // size[name] for name in configs) * len(keys)

        async def all_matched() -> bool:
            return len(lines(flow.name)) >= want

        await until(all_matched, 60)
        views = {(v.name, v.key): v for v in await open_windows(client, flow.name)}
        workflow_ids = [short_id(pattern_workflow_id(flow.name, name, key))
                        for name in configs for key in keys]  # fmt: skip
        runs = [run for workflow_id in workflow_ids for run in await chain(client, workflow_id)]
        for workflow_id in workflow_ids:
            await client.get_workflow_handle(workflow_id).terminate("test over")
    # Each pattern workflow ran EVENTS / EVENTS_PER_RUN runs or more, each bounded.
    signals = [sum(e.event_type == SIGNALED for e in run.events) for run in runs]
    assert len(runs) >= len(workflow_ids) * EVENTS // SIGNALS_BOUND, len(runs)
    assert max(signals) <= SIGNALS_BOUND, sorted(signals)
    assert max(len(run.events) for run in runs) <= HISTORY_BOUND
    # Every match published once, each event in exactly one match, in order; the last event
    # of each key is still in its open window, carried across every continue-as-new.
    derived = lines(flow.name)
    assert len(derived) == want
    assert max(Counter(line["parent_event"] for line in derived).values()) == 1
    for (name, key), ids in sent.items():
        # Delivered in any order (the watcher is not ordered): put them in the order sent.
        matched = sorted((line["events"] for line in derived
                          if (line["pattern"], line["key"]) == (name, key)),
                         key=lambda match: ids.index(match[0]))  # fmt: skip
        assert [i for match in matched for i in match] == ids[:-1], (name, key)
        assert all(len(match) == size[name] for match in matched)
        assert views[(name, key)].matches == len(matched)
        assert [w.ids for w in views[(name, key)].windows] == [ids[-1:]]
