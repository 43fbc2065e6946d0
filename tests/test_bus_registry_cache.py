"""The fan-out's cached bus registry (agentflow/client/bus_registrations.py): asked again only
after a change, and never stale once a register or forget has returned, with two bus workers
(two clients, two caches) serving the bus at once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable
from pathlib import Path

from temporalio.client import Client

from agentflow.client.bus import client_request, forget, publish
from agentflow.client.bus_registrations import (
    cached_registrations,
    registrations,
    registry_version,
)
from agentflow.config import FlowConfig, parse_config
from agentflow.worker.serve import serving
from tests._bus_sessions import bus_idle, subscriber_tally, until
from tests.conftest import REPO


def _subscriber(name: str, agent: str, topic: str) -> FlowConfig:
    return parse_config({
        "agent_flow": {"name": name},
        "orchestration": {"mode": "route"},
        "agents": {agent: {"handler": "tests.agents:bus_agent", "subscribes": [topic]}},
    }, base_dir=REPO, check_handlers=True)  # fmt: skip


def _agents_that_got(log: Path, n: int) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return sorted(seen["agent"] for seen in map(json.loads, lines) if seen["n"] == n)


async def test_register_and_forget_reach_the_next_fan_out(client: Client, tmp_path: Path) -> None:
    topic, log, tag = f"cache.{uuid.uuid4().hex[:6]}", tmp_path / "log", uuid.uuid4().hex[:6]
    first = _subscriber(f"first-{tag}", "a1", topic)
    second = _subscriber(f"second-{tag}", "a2", topic)
    other = await Client.connect(client.service_client.config.target_host,
                                 data_converter=client.data_converter)  # fmt: skip

    async def publish_and_wait(n: int, expected: list[str]) -> None:
        request = client_request(first, topic, {"log_file": str(log), "n": n}, identity="t")
        await publish(client, request)
        await until(lambda: _delivered(log, n, len(expected)), f"event {n} delivered")
        await until(lambda: bus_idle(client), "the bus fanned out everything")
        assert _agents_that_got(log, n) == expected

    async def second_got() -> int:  # deliveries its sessions took (processed or still queued)
        tally = await subscriber_tally(client, second.name, "a2", second.bus.max_parallel)
        return tally.accounted

    async with serving(client, [(first, REPO)], task_queue=f"q-{tag}-1"):
        for n in range(3):  # the cache of each bus worker that fans out is warm now
            await publish_and_wait(n, ["a1"])
        before = await registry_version(client)
        async with serving(other, [(second, REPO)], task_queue=f"q-{tag}-2"):
            assert await registry_version(client) != before  # the register changed it
            for n in range(3, 6):  # either bus worker may fan out: both see the register
                await publish_and_wait(n, ["a1", "a2"])
            await until(lambda: _equals(second_got(), 3), "the second flow took 3 events")
            await forget(client, second.name)  # its worker still serves: only the registry
            for n in range(6, 9):  # decides, and no fan-out delivers from a stale cache
                await publish_and_wait(n, ["a1"])
            assert await second_got() == 3  # every fan-out has emitted: none went to it
            for bus_client in (client, other):  # each cache agrees with the registry
                assert await cached_registrations(bus_client) == await registrations(bus_client)
        await forget(client, first.name)  # a bus worker still runs to apply it


async def _delivered(log: Path, n: int, count: int) -> bool:
    await asyncio.sleep(0)
    return len(_agents_that_got(log, n)) >= count


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
