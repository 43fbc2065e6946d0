"""The durable bus loses nothing when workers die: 300 events published to a topic with three
subscribers (three flows, each served by its own worker process on its own task queue).

While the events are published, the first subscriber's worker is SIGKILLed and started again.
The third subscriber's worker registered, then stayed down: it starts only once the other two
have every event. Every worker process also runs a bus worker (the shards' fan-out), so the
kill takes one of those down too. Every handler call logs one line (``log_call`` of
``tests/session_agents.py``): delivery session, delivery event id, n, agent and the pid.

What may run twice: the subscribers' agents are regular activities, so a kill repeats at most
the call each of the killed subscriber's sessions was running (a session takes one delivery at
a time). A fan-out re-run after the kill emits deliveries again with the same ids, which the
subscriber sessions drop as duplicates: never a second call. Each subscriber's sessions must
account for every event: published = delivered + dead-lettered + pending.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client

from agentflow.client.bus import client_request, forget, publish, register
from agentflow.config import FlowConfig, load_config
from tests._bus_sessions import Tally, bus_idle, subscriber_tally, until
from tests._worker_process import WorkerProcess
from tests.session_agents import Call, read_calls

EVENTS = 300
# The three subscribers: their agent's name (also its flow's role in the test).
KILLED, STEADY, LATE = "killed", "steady", "late"
SLEEP_SECONDS = 0.005  # each call: long enough that a kill can land in one

FLOW = """
[agent_flow]
name = "{flow}"

[orchestration]
mode = "route"                      # only a subscriber: each delivery runs its agent
workflow_task_timeout_seconds = 2   # a dead worker's sessions move on after 2 s

[orchestration.retry]
initial_interval_seconds = 0.1

[agents.{agent}]
handler = "tests.session_agents:log_call"
timeout_seconds = 3                 # the heartbeat timeout too: a dead worker's call retries
subscribes = ["{topic}"]
"""


class SubscriberFlow:
    """One subscribing flow: its config file, the worker process that serves it."""

    def __init__(self, tmp_path: Path, agent: str, topic: str, address: str) -> None:
        self.agent = agent
        path = tmp_path / f"{agent}.toml"
        flow = f"bus-crash-{agent}-{uuid.uuid4().hex[:6]}"
        path.write_text(FLOW.format(flow=flow, agent=agent, topic=topic))
        self.config: FlowConfig = load_config(path)
        queue = f"{flow}-q"
        self.worker = WorkerProcess(path, queue, address, tmp_path / f"{agent}-worker.log")

    async def start(self) -> int:
        """Start a worker process (ready once it polls and registered); its pid."""
        process = (await asyncio.to_thread(self.worker.start)).process
        assert process is not None
        return process.pid

    async def tally(self, client: Client) -> Tally:
        return await subscriber_tally(
            client, self.config.name, self.agent, self.config.bus.max_parallel
        )


def calls_of(log: Path, agent: str) -> list[Call]:
    return [call for call in read_calls(log) if call.agent == agent] if log.exists() else []


async def publish_events(client: Client, config: FlowConfig, topic: str, log: Path,
                         numbers: range, run: str) -> None:  # fmt: skip
    """Publish event n for each n, 20 at a time; each returns once Temporal recorded it."""
    for first in range(numbers.start, numbers.stop, 20):
        data = [{"n": n, "log_file": str(log), "sleep": SLEEP_SECONDS}
                for n in range(first, min(first + 20, numbers.stop))]  # fmt: skip
        requests = [client_request(config, topic, item, identity="crash-test",
                                   event_id=f"{run}-{item['n']}") for item in data]  # fmt: skip
        await asyncio.gather(*(publish(client, request) for request in requests))


def check_once(calls: Sequence[Call], agent: str) -> None:
    """Every event reached the subscriber exactly once."""
    assert Counter(call.n for call in calls) == dict.fromkeys(range(EVENTS), 1), agent


def check_killed(calls: Sequence[Call], killed_pid: int, slots: int) -> list[Call]:
    """Every event reached the killed subscriber; those that ran twice were running when its
    worker died: the killed process's last call in that session, run again as the next
    process's first call there, with the same delivery id. Returns the repeated calls."""
    assert set(Counter(call.n for call in calls)) == set(range(EVENTS))
    per_event: dict[int, list[Call]] = {}
    for call in calls:
        per_event.setdefault(call.n, []).append(call)
    repeated = [runs for runs in per_event.values() if len(runs) > 1]
    for runs in repeated:
        assert len(runs) == 2, runs
        before, after = runs
        assert before.event == after.event, runs  # the same delivery, retried
        in_session = [call for call in calls if call.session == before.session]
        old = [call for call in in_session if call.pid == killed_pid]
        new = [call for call in in_session if call.pid != killed_pid]
        assert old[-1] == before and new[0] == after, f"{runs} was not running at the kill"
    assert len(repeated) <= slots, f"{len(repeated)} calls ran twice; {slots} sessions"
    return [runs[0] for runs in repeated]


def check_tally(tally: Tally, agent: str) -> None:
    """published = delivered + dead-lettered + pending, from the subscriber's sessions."""
    assert tally.counts.emitted == EVENTS, (agent, tally)
    assert tally.accounted == EVENTS, (agent, tally)
    assert tally.counts.handled == 0 and tally.counts.dead_lettered == 0, (agent, tally)


async def test_300_events_reach_3_subscribers_through_a_killed_and_a_late_worker(
    client: Client, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    topic = f"crash-{run}.placed"
    log = tmp_path / "calls.log"
    address = client.service_client.config.target_host
    killed, steady, late = (SubscriberFlow(tmp_path, name, topic, address)
                            for name in (KILLED, STEADY, LATE))  # fmt: skip
    subscribers = (killed, steady, late)
    try:
        killed_pid, _ = await asyncio.gather(killed.start(), steady.start())
        # The late subscriber's worker registered its subscription, then went down.
        await register(client, [late.config], late.worker.task_queue)

        await publish_events(client, killed.config, topic, log, range(0, 100), run)
        await until(lambda: _at_least(calls_of(log, KILLED), 20), "the killed worker never ran")
        killed.worker.kill()
        killed_calls = len(calls_of(log, KILLED))
        await publish_events(client, killed.config, topic, log, range(100, 200), run)
        restarting = asyncio.create_task(killed.start())
        await publish_events(client, killed.config, topic, log, range(200, 300), run)
        restarted_pid = await restarting

        async def others_done() -> bool:
            tallies = [await sub.tally(client) for sub in (killed, steady)]
            done = all(t.counts.processed == EVENTS and not t.pending for t in tallies)
            return done and await bus_idle(client)

        # The late subscriber's worker is down: the others get every event all the same.
        await until(others_done, "the other subscribers did not get every event")
        assert not calls_of(log, LATE), "the late subscriber ran with no worker"
        await late.start()
        # Its deliveries waited in its sessions: just started, all are accounted for.
        check_tally(await late.tally(client), LATE)

        async def late_done() -> bool:
            tally = await late.tally(client)
            return tally.counts.processed == EVENTS and not tally.pending

        await until(late_done, "the late subscriber did not get every event")
        tallies = {sub.agent: await sub.tally(client) for sub in subscribers}
        for sub in subscribers:
            await forget(client, sub.config.name)
    finally:
        await asyncio.gather(*(asyncio.to_thread(sub.worker.stop) for sub in subscribers))

    for agent, tally in tallies.items():
        check_tally(tally, agent)
        assert tally.pending == 0, (agent, tally)
    check_once(calls_of(log, STEADY), STEADY)
    check_once(calls_of(log, LATE), LATE)
    mine = calls_of(log, KILLED)
    assert {call.pid for call in mine} == {killed_pid, restarted_pid}
    assert 0 < killed_calls < EVENTS, "the kill did not land while the subscriber worked"
    repeated = check_killed(mine, killed_pid, killed.config.bus.max_parallel)
    assert len(mine) == EVENTS + len(repeated)


async def _at_least(calls: list[Call], count: int) -> bool:
    return len(calls) >= count
