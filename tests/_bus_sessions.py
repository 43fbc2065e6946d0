"""For the bus tests: a subscriber's deliveries as its sessions count them, and waiting.

An unordered agent subscriber takes its deliveries in ``max_parallel`` slot sessions,
``bus:AGENT:p0`` … (agentflow.bus.delivery_session); its counts are the sums over them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from temporalio.client import Client

from agentflow.client.sessions import session_view
from agentflow.errors import AgentflowError
from agentflow.models.bus import SHARDS
from agentflow.models.session import SessionCounts, SessionView
from agentflow.names import BUS_FLOW


@dataclass
class Tally:
    """A subscriber's counts over its sessions, and what they hold still (queued or running)."""

    counts: SessionCounts = field(default_factory=SessionCounts)
    pending: int = 0
    sessions: int = 0

    def add(self, view: SessionView) -> None:
        self.counts += view.counts
        self.pending += len(view.queued) + (view.current is not None)
        self.sessions += 1

    @property
    def accounted(self) -> int:
        """Every delivery the subscriber accepted is delivered, dead-lettered or pending."""
        return self.counts.processed + self.counts.dead_lettered + self.pending


async def existing_views(client: Client, flow: str, sessions: Iterable[str]) -> list[SessionView]:
    """The views of those of ``sessions`` that exist (each answers its own query)."""

    async def view(session: str) -> SessionView | None:
        try:
            return await session_view(client, flow, session)
        except AgentflowError:  # no such session: no event went to it
            return None

    views = await asyncio.gather(*(view(session) for session in sessions))
    return [found for found in views if found is not None]


async def subscriber_tally(client: Client, flow: str, agent: str, max_parallel: int) -> Tally:
    """The agent's slot sessions that exist, summed. Each session's counts add up on their
    own, so their sum does too, even though the sessions answer at slightly different times."""
    tally = Tally()
    slots = (f"bus:{agent}:p{slot}" for slot in range(max_parallel))
    for view in await existing_views(client, flow, slots):
        tally.add(view)
    return tally


async def bus_idle(client: Client) -> bool:
    """No bus shard holds an event still to fan out (so every fan-out has emitted all its
    deliveries; a worker must serve the bus to answer)."""
    shards = await existing_views(client, BUS_FLOW, (f"shard-{n}" for n in range(SHARDS)))
    return all(view.current is None and not view.queued for view in shards)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 120) -> None:
    """Wait until ``check()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"after {timeout} s: {what}") from None
