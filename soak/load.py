"""What the soak sends: flows of every mode, events into sessions, bus publishes, and runs
that wait for a scripted approval. Each driver spreads its work over the soak's duration and
keeps its own count of what Temporal accepted, which the report checks against what the
sessions, subscribers and ledger say."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from agentflow.client.approvals import ApprovalDecisionError, decide, decision, pending
from agentflow.client.runner import Runner
from agentflow.config import load_config
from soak.retry import patiently


@dataclass
class Counts:
    """What the soak itself saw."""

    emitted: Counter[str] = field(default_factory=Counter)  # per session id
    runs: Counter[str] = field(default_factory=Counter)  # "flow:completed" / "flow:failed"
    errors: list[str] = field(default_factory=list)
    published: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    # Keys of every run the soak started, per flow (the ledger is checked against them).
    keys: dict[str, list[str]] = field(default_factory=dict)
    # Good traffic's latency, (time.time() at the start, seconds): each session emit until
    # the server has it, and each probe event until it is processed (emit and wait).
    latency: list[tuple[float, float]] = field(default_factory=list)
    probes: list[tuple[float, float]] = field(default_factory=list)

    def emitted_in(self, flow: str) -> Counter[str]:
        """What was emitted into ``flow``'s sessions (not the long conversations)."""
        return Counter({s: n for s, n in self.emitted.items() if ":" not in s})


MODE_NAMES = ("sequential", "route", "collaborative", "loop", "mixed")


def runner(path: Path) -> Runner:
    return Runner(load_config(path))


async def paced(total: int, seconds: float, send: Any) -> None:
    """``send(i)`` for i in range(total), spread evenly over ``seconds``, at most 50 at once."""
    limit = asyncio.Semaphore(50)
    gap = seconds / max(total, 1)

    async def one(i: int) -> None:
        async with limit:
            await send(i)

    tasks = []
    for i in range(total):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(gap)
    await asyncio.gather(*tasks)


async def sessions(path: Path, count: int, events: int, seconds: float, book: Counts) -> None:
    """``events`` events into ``count`` sessions, round robin; each emit retried with the same
    event id until the server has it."""
    flow = runner(path)
    names = [f"s{i:03d}" for i in range(count)]

    async def send(i: int) -> None:
        session, key = names[i % count], f"ev{i:06d}"
        data = {"key": key, "last": "b"}
        began = time.time()
        await patiently(lambda: flow.emit(data, session_id=session, event_id=key), "emit")
        book.latency.append((began, time.time() - began))
        book.emitted[session] += 1

    await paced(events, seconds, send)


PROBE_SESSIONS = 20
PROBES_IN_FLIGHT = 10  # below Temporal's 10 in-flight Updates per workflow, spread over 20


async def probe(path: Path, seconds: float, book: Counts, gap: float = 1.0) -> None:
    """An event every ``gap`` seconds (fewer while 10 wait) into the sessions ``probe0`` to
    ``probe19`` in turn, each waited for until processed: the good traffic's end-to-end
    latency, for comparison with and without bad input."""
    flow = runner(path)
    room = asyncio.Semaphore(PROBES_IN_FLIGHT)
    end = time.time() + seconds
    tasks = []

    async def one(i: int) -> None:
        key, began, session = f"probe{i:05d}", time.time(), f"probe{i % PROBE_SESSIONS}"
        data = {"key": key, "last": "b"}
        try:
            send = partial(flow.emit, data, session_id=session, event_id=key, wait=True)
            await patiently(send, "emit and wait")
            book.probes.append((began, time.time() - began))
            book.emitted[session] += 1
        finally:
            room.release()

    i = 0
    while time.time() < end:
        await room.acquire()
        tasks.append(asyncio.create_task(one(i)))
        i += 1
        await asyncio.sleep(gap)
    await asyncio.gather(*tasks)


async def modes(paths: dict[str, Path], runs: int, seconds: float, book: Counts) -> None:
    """``runs`` runs spread over the five modes."""
    runners = {mode: runner(path) for mode, path in paths.items()}
    order = list(runners)

    async def send(i: int) -> None:
        mode = order[i % len(order)]
        key = f"{mode}-{i:05d}"
        data = {"key": key, "to": "finish", "loops": 3, "sleep": 0.2}
        await run_to_end(runners[mode], key, data, book)

    await paced(runs, seconds, send)


async def run_to_end(flow: Runner, key: str, data: dict[str, Any], book: Counts) -> None:
    """Start a run under a fixed id (a repeat after a lost reply finds it started) and wait
    for its end; count it as completed or failed."""
    name = flow.config.name
    book.keys.setdefault(name, []).append(key)
    client = await flow.client()

    async def start() -> None:
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await flow.start(data, workflow_id=key)

    await patiently(start, f"start {key}")
    handle = client.get_workflow_handle(key)
    try:
        await patiently(handle.result, f"result of {key}")
        book.runs[f"{name}:completed"] += 1
    except WorkflowFailureError as err:
        book.runs[f"{name}:failed"] += 1
        book.errors.append(f"{key}: {err.cause or err}")
    except TimeoutError as err:
        book.runs[f"{name}:lost"] += 1
        book.errors.append(str(err))


async def bus(path: Path, publishes: int, seconds: float, book: Counts) -> None:
    """Publishes to ``soak.*`` from the first bus file, under 5 keys, each key's events
    numbered in publish order (the ordered subscriber must see them in that order)."""
    flow = runner(path)
    lock = asyncio.Lock()  # one key's publishes go out one after another
    seqs: Counter[str] = Counter()

    async def send(i: int) -> None:
        pkey = f"k{i % 5}"
        async with lock:
            seq = seqs[pkey]
            seqs[pkey] += 1
            key = f"pub{i:05d}"
            data = {"key": key, "pkey": pkey, "seq": seq}
            await patiently(lambda: flow.publish("soak.event", data, key=pkey, event_id=key),
                            "publish")  # fmt: skip
        book.published += 1

    await paced(publishes, seconds, send)


async def approvals(path: Path, runs: int, seconds: float, book: Counts) -> None:
    """Runs whose ``pay`` agent waits for approval, and a script deciding them: approve two
    in three, reject the rest."""
    if not runs:
        return
    flow = runner(path)
    client = await flow.client()
    done = asyncio.Event()
    decider = asyncio.create_task(_decide(client, flow.config.name, done, book))

    async def send(i: int) -> None:
        await run_to_end(flow, f"approve-{i:04d}", {"key": f"approve-{i:04d}"}, book)

    try:
        await paced(runs, seconds, send)
    finally:
        done.set()
        await decider


async def _decide(client: Client, flow: str, done: asyncio.Event, book: Counts) -> None:
    decided: set[str] = set()
    while not done.is_set():
        try:
            async for waiting in pending(client, flow=flow):
                if waiting.workflow_id in decided:
                    continue
                approve = random.Random(waiting.workflow_id).random() < 2 / 3
                request = decision(approve, waiting.agent, "soak", "" if approve else "no")
                await decide(client, waiting.workflow_id, request)
                decided.add(waiting.workflow_id)
                book.decisions["approved" if approve else "rejected"] += 1
        except (ApprovalDecisionError, Exception) as err:  # the server or a worker is down
            book.decisions[f"retried: {type(err).__name__}"] += 1
        await asyncio.sleep(1.0)
