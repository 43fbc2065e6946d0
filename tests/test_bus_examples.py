"""The durable bus example (examples/bus/, seed 004) across two real worker processes.

``support.toml`` and ``research.toml`` are served by two ``agentflow worker`` processes on two
task queues; one publish of ``user.query`` reaches the audit logger, the notifier and the SMS
agent (support) and the researcher (research), whose ``research.complete`` reaches the email
agent back on the support worker. The SMS agent fails for good (no phone number) alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from pathlib import Path

from temporalio.client import Client

from agentflow.client.bus import client_request, forget, publish
from agentflow.client.dead_letters import LetterRow, list_letters
from agentflow.config import FlowConfig, load_config
from agentflow.models.bus import Subscriber, delivery_event_id, subscribers_of
from tests._bus_sessions import Tally, subscriber_tally, until
from tests._worker_process import WorkerProcess
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "bus"
QUERY = {"query": "What is the company revenue?", "user": "user-123"}


def written(out: Path, name: str) -> list[str]:
    path = out / name
    return path.read_text("utf-8").splitlines() if path.exists() else []


async def sms_letter(client: Client, event_id: str) -> LetterRow | None:
    async for letter in list_letters(client, flow="support"):
        if letter.event_id == event_id:
            return letter
    return None


async def test_seed_004_runs_across_two_worker_processes(client: Client, tmp_path: Path) -> None:
    support, research = (load_config(EXAMPLE / name) for name in ("support.toml", "research.toml"))
    address = client.service_client.config.target_host
    workers = [
        WorkerProcess(EXAMPLE / f"{config.name}.toml", f"{config.name}-{uuid.uuid4().hex[:8]}",
                      address, tmp_path / f"{config.name}-worker.log", cwd=tmp_path)
        for config in (support, research)
    ]  # fmt: skip
    out = tmp_path / ".agentflow" / "bus"
    subscribers = [(support, "audit_logger"), (support, "notifier"), (support, "sms"),
                   (support, "emailer"), (research, "researcher")]  # fmt: skip
    try:
        await asyncio.gather(*(asyncio.to_thread(worker.start) for worker in workers))
        request = client_request(support, "user.query", QUERY, identity="test")
        await publish(client, request)
        tallies: dict[str, Tally] = {}

        async def settled() -> bool:
            for config, agent in subscribers:
                tallies[agent] = await subscriber_tally(client, config.name, agent,
                                                        config.bus.max_parallel)  # fmt: skip
            return all(t.counts.emitted and not t.pending for t in tallies.values())

        await until(settled, "every subscriber got the event and is done with it")
        sms_event = delivery_event_id(_subscriber(support, "sms"), request.event_id)
        await until(lambda: _found(sms_letter(client, sms_event)), "the SMS agent's letter")
        letter = await sms_letter(client, sms_event)
        for config in (support, research):
            await forget(client, config.name)  # later publishes of user.query skip them
    finally:
        for worker in workers:
            worker.stop()

    # Every subscriber reacted once: one delivery each, none twice (overlapping patterns too).
    for agent, tally in tallies.items():
        count = tally.counts
        expected = (1, 0, 1) if agent == "sms" else (1, 1, 0)
        assert (count.emitted, count.completed, count.dead_lettered) == expected, (agent, count)
        assert count.duplicates == 0, (agent, count)
    [audit] = written(out, "audit.log")
    assert audit.endswith(f"user.query from client test: user user-123 asked {QUERY['query']!r}")
    assert audit.startswith(delivery_event_id(_subscriber(support, "audit_logger"),
                                              request.event_id))  # fmt: skip
    [notification] = written(out, "notifications.log")
    assert notification.endswith("new query from user user-123")
    [researched] = written(out, "research.log")
    assert researched.endswith(f"Research result for: {QUERY['query']}")
    # The email came through the bus from the other worker's researcher, which it names.
    [email] = written(out, "outbox.log")
    assert email.endswith(
        f"to user user-123: Research result for: {QUERY['query']} "
        "(research.complete published by research.researcher, via researcher)"
    )
    assert not written(out, "sms.log")
    assert letter is not None
    assert (letter.reason, letter.failed_agent) == ("agent failed", "sms")
    assert letter.error is not None and "user user-123 has no phone number" in letter.error


def _subscriber(config: FlowConfig, agent: str) -> Subscriber:
    [sub] = [s for s in subscribers_of(config, "any queue") if s.agent == agent]
    return sub


async def _found(row: Awaitable[LetterRow | None]) -> bool:
    return await row is not None
