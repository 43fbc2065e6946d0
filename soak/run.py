"""One soak, start to end: processes up, load and faults together, then the accounting."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from soak import account, bad, hostile, load, talk
from soak.faults import Fault, FaultPlan, inject, sample_rss
from soak.flows import write_flows
from soak.procs import Server, Worker
from soak.provider import FaultyLLM, Rates
from soak.proxy import Proxy

PARTS = frozenset({"sessions", "modes", "bus", "approvals", "llm", "conversation", "bad"})
# The flow files each part needs (soak/flows.py).
FILES = {
    "sessions": ["sessions"], "modes": list(load.MODE_NAMES), "bus": ["bus-a", "bus-b"],
    "approvals": ["approvals"], "llm": ["llm"], "conversation": ["chat", "chat-store"],
    "bad": ["bad"],  # soak-ghost is written, never served: bad input's unknown flow
}  # fmt: skip


@dataclass
class Size:
    sessions: int = 200
    events: int = 10_000
    turns: int = 1_000
    minutes: float = 20.0
    runs: int | None = None  # flows of the five modes (default: events / 20)
    publishes: int | None = None  # default: events / 10
    approvals: int | None = None  # default: events / 150, at least 6
    llm_runs: int | None = None  # default: events / 30
    bad: int | None = None  # bad inputs (soak/bad.py), default: events / 100, at least 14
    plan: FaultPlan = field(default_factory=FaultPlan)
    # What runs: all of PARTS by default; tests/test_soak.py runs "sessions" alone.
    parts: frozenset[str] = PARTS
    workers: int = 3  # the last one talks to the server through the proxy
    rates: Rates = field(default_factory=Rates)
    hostile: bool = False  # run the hostile-input suite during the load (soak/hostile.py)

    def scaled(self) -> dict[str, int]:
        e = self.events
        return {
            "runs": self.runs if self.runs is not None else max(5, e // 20),
            "publishes": self.publishes if self.publishes is not None else max(5, e // 10),
            "approvals": self.approvals if self.approvals is not None else max(6, e // 150),
            "llm_runs": self.llm_runs if self.llm_runs is not None else max(3, e // 30),
            "bad": self.bad if self.bad is not None else max(2 * len(bad.KINDS), e // 100),
        }


async def soak(size: Size, folder: Path) -> dict[str, Any]:
    """Run the soak in ``folder`` (logs, ledger, SQLite file); return the report's data."""
    (folder / "ledger").mkdir(parents=True, exist_ok=True)
    scaled = size.scaled()
    llm = FaultyLLM(size.rates)
    with llm:
        paths = write_flows(folder, llm.url("ollama"))
        server = Server(folder)
        await asyncio.to_thread(server.start)
        os.environ["TEMPORAL_ADDRESS"] = server.address  # every Runner of the soak's own
        proxy = await Proxy(server.port).start()
        configs = [paths[name] for part in sorted(size.parts) for name in FILES[part]]
        # A worker connects with its first file's [payloads] and uses it for every flow it
        # serves (agentflow/worker/serve.py): the flow with a store gets a worker of its own.
        store = paths["chat-store"]
        shared = [path for path in configs if path != store]
        workers = [
            Worker(f"w{i + 1}", shared, proxy.address if i == 2 else server.address, folder)
            for i in range(size.workers)
        ]
        if store in configs:
            workers.append(Worker("store", [store], server.address, folder))
        try:
            await asyncio.gather(*(asyncio.to_thread(w.start_patiently) for w in workers))
            return await _drive(size, scaled, folder, paths, llm, server, workers, proxy)
        finally:
            for worker in workers:
                worker.stop()
            await proxy.close()
            server.stop()


async def _drive(
    size: Size, scaled: dict[str, int], folder: Path, paths: dict[str, Path], llm: FaultyLLM,
    server: Server, workers: list[Worker], proxy: Proxy,
) -> dict[str, Any]:  # fmt: skip
    seconds = size.minutes * 60
    window = seconds * 0.75  # the load is spread over this; the rest drains it
    book = load.Counts()
    began = time.monotonic()
    rss: list[dict[str, int]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(workers, stop, rss))
    faults_task = asyncio.create_task(inject(size.plan, window, server, workers, proxy))
    modes = {mode: paths[mode] for mode in load.MODE_NAMES}
    parts = size.parts
    turns = size.turns if "conversation" in parts else 0
    phases = bad.Phases(time.time(), window)
    stray = load.runner(paths["bad"])
    targets = bad.Targets(load.runner(paths["sessions"]), stray, load.runner(paths["ghost"]))
    sending_bad = asyncio.create_task(
        bad.send_bad(targets, scaled["bad"] if "bad" in parts else 0, phases)
    )
    suite = asyncio.create_task(hostile.run_suite(folder)) if size.hostile else None
    ended = await asyncio.gather(
        load.sessions(paths["sessions"], size.sessions, size.events, window, book),
        load.probe(paths["sessions"], window if "sessions" in parts else 0, book),
        load.modes(modes, scaled["runs"] if "modes" in parts else 0, window, book),
        load.bus(paths["bus-a"], scaled["publishes"] if "bus" in parts else 0, window, book),
        load.approvals(
            paths["approvals"], scaled["approvals"] if "approvals" in parts else 0, window, book
        ),
        talk.llm_runs(paths["llm"], scaled["llm_runs"] if "llm" in parts else 0, window, book),
        talk.conversation(paths["chat"], turns, book),
        talk.conversation(paths["chat-store"], turns, book),
        return_exceptions=True,
    )
    # A driver that gave up (the server away longer than retry.PATIENCE_SECONDS): reported.
    book.errors += [f"driver failed: {err!r}" for err in ended if isinstance(err, BaseException)]
    faults: list[Fault] = await faults_task
    kinds = await sending_bad
    loaded = time.monotonic() - began
    client = await load.runner(paths["sessions"]).client()
    drain = max(120.0, seconds - (time.monotonic() - began))
    sessions = await account.settle(client, "soak-sessions", book.emitted_in("soak-sessions"),
                                    drain)  # fmt: skip
    for flow in ("chat", "chat-store") if turns else ():  # each its own payload store
        chat = load.runner(paths[flow])
        name = chat.config.name
        sent = Counter({talk.LONG_SESSION: book.emitted[f"{name}:{talk.LONG_SESSION}"]})
        sessions += await account.settle(await chat.client(), name, sent, 120)
    subscribers = [
        await account.subscriber(client, flow, agent, 8, book.published, drain)
        for flow, agent in (("soak-bus-a", "audit"), ("soak-bus-b", "ordered"))
        if "bus" in parts
    ]
    entries = account.read_ledger(folder / "ledger")
    explained, unexplained = account.repeats(entries, faults)
    base = {key: 2 for key in book.keys.get("soak-llm", [])}
    for flow in ("soak-chat", "soak-chat-store"):
        base.update({f"{flow}-t{t:04d}": 1 for t in range(turns)})
    requests, beyond = account.model_requests(llm, faults, base)
    conversations = [
        await talk.measure(client, flow) for flow in ("soak-chat", "soak-chat-store") if turns
    ]
    # Left out of the latency: from just before a fault until 15 s after it is whole again;
    # for a worker's kill, its agents' timeout (10 s) and 5 s more (the other workers serve
    # meanwhile, however slowly the killed one restarts).
    quiet = [(f.at - 2, (f.at if f.pid else f.until) + 15) for f in faults]
    bad_input = {
        "kinds": bad.summary(kinds, await bad.held(client, targets.ghost)),
        "latency": {
            "emit": bad.latency(book.latency, phases, quiet),
            "event": bad.latency(book.probes, phases, quiet),
        },
    }
    stop.set()
    await sampler
    return {
        "size": {
            **asdict(size),
            **scaled,
            "parts": sorted(parts),
            "seconds_loaded": round(loaded),
        },
        "faults": [asdict(fault) for fault in faults],
        "sessions": [asdict(row) | {"unaccounted": row.unaccounted} for row in sessions],
        "subscribers": [asdict(row) | {"unaccounted": row.unaccounted} for row in subscribers],
        "out_of_order": account.out_of_order(entries, "ordered"),
        "runs": dict(book.runs),
        "errors": book.errors[:50],
        "decisions": dict(book.decisions),
        "ledger": {
            "calls": len(entries),
            "repeated_at_fault": explained,
            "repeated_unexplained": unexplained,
        },
        "model_requests": requests,
        "requests_beyond_retries": beyond,
        "histories": await account.histories(client),
        "conversations": [asdict(c) for c in conversations],
        "bad_input": bad_input,
        "hostile": await suite if suite else None,
        "rss": {
            w.name: {
                "pids": w.pids,
                "start": w.rss_start,
                "end": w.rss(),
                "max": max((s.get(w.name, 0) for s in rss), default=0),
            }
            for w in workers
        },
    }
