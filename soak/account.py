"""Accounting: every event, delivery, agent call, tool call and model request the soak caused,
checked against what sessions, subscribers, the ledger and the fake provider say."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus

from agentflow.client.bus import session_counts
from agentflow.client.sessions import session_view
from agentflow.models.session import SessionCounts
from agentflow.names import session_workflow_id
from soak.faults import Fault
from soak.provider import FaultyLLM

# Temporal's hard limits on one run's history (the server terminates the run beyond them).
MAX_HISTORY_EVENTS, MAX_HISTORY_BYTES = 51_200, 50 * 1024 * 1024
# A call that ran again counts as explained when its first try began this close to a fault:
# before it (in flight when it struck), or after it (a worker cut off resumes its old tasks
# only once its connection's backoff ends, ~15 s after the proxy lets it through again).
FAULT_MARGIN_SECONDS = 30.0


def near_fault(at: float, faults: list[Fault]) -> str | None:
    for fault in faults:
        if fault.pid is None and fault.at - FAULT_MARGIN_SECONDS <= at <= (
            fault.until + FAULT_MARGIN_SECONDS
        ):
            return fault.what
    return None


@dataclass(frozen=True)
class Entry:
    kind: str
    key: str
    pid: int
    at: float


@dataclass
class Tally:
    """One row of the accounting: emitted = processed + dead-lettered + queued."""

    name: str
    sent: int  # what the soak had accepted
    emitted: int  # what the session(s) counted
    processed: int
    dead_lettered: int
    queued: int

    @property
    def unaccounted(self) -> int:
        return self.sent - self.processed - self.dead_lettered - self.queued

    @property
    def ok(self) -> bool:
        return self.unaccounted == 0 and self.sent == self.emitted


def read_ledger(folder: Path) -> list[Entry]:
    entries = []
    for path in sorted(folder.glob("ledger-*.tsv")):
        for line in path.read_text().splitlines():
            kind, key, pid, at = line.split("\t")
            entries.append(Entry(kind, key, int(pid), float(at)))
    return sorted(entries, key=lambda entry: entry.at)


def repeats(entries: list[Entry], faults: list[Fault]) -> tuple[list[str], list[str]]:
    """Agent and tool calls that ran more than once: (explained by a fault, unexplained)."""
    seen: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.kind in ("agent", "tool"):
            seen[entry.kind, entry.key].append(entry)
    explained: list[str] = []
    unexplained: list[str] = []
    for (kind, key), runs in seen.items():
        if len(runs) < 2:
            continue
        first = runs[0]
        killed = next((fault.what for fault in faults if fault.pid == first.pid), None)
        cause = killed or near_fault(first.at, faults)
        line = f"{kind} {key}: {len(runs)} times (pids {', '.join(str(r.pid) for r in runs)})"
        (explained if cause else unexplained).append(f"{line}; {cause}" if cause else line)
    return explained, unexplained


def out_of_order(entries: list[Entry], agent: str) -> list[str]:
    """Per publish key, the ordered subscriber's first delivery of each seq in time order."""
    firsts: dict[str, list[int]] = defaultdict(list)
    done: set[str] = set()
    for entry in entries:
        if entry.kind == "order" and entry.key.startswith(f"{agent}:") and entry.key not in done:
            done.add(entry.key)
            _, pkey, seq = entry.key.split(":")
            firsts[pkey].append(int(seq))
    return [f"key {k}: {s}" for k, s in firsts.items() if s != sorted(s)]


async def settle(client: Client, flow: str, sent: Counter[str], timeout: float) -> list[Tally]:
    """Each session's tally, once every event has an outcome (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [await _session_row(client, flow, session, n) for session, n in sent.items()]
        if all(row.queued == 0 and row.ok for row in rows) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(2)


async def _session_row(client: Client, flow: str, session: str, sent: int) -> Tally:
    try:
        view = await session_view(client, flow, session)
    except Exception:  # no worker answered: counted as nothing seen
        return Tally(f"{flow}:{session}", sent, 0, 0, 0, 0)
    counts = view.counts
    queued = len(view.queued) + (1 if view.current else 0)
    return Tally(f"{flow}:{session}", sent, counts.emitted, counts.processed,
                 counts.dead_lettered, queued)  # fmt: skip


async def subscriber(
    client: Client, flow: str, agent: str, slots: int, sent: int, timeout: float
) -> Tally:
    """A bus subscriber's deliveries: the sum over its delivery sessions, once settled."""
    deadline = time.monotonic() + timeout
    while True:
        total = SessionCounts()
        queued = 0
        for slot in [f"k{i}" for i in range(slots)] + [f"p{i}" for i in range(slots)]:
            workflow_id = session_workflow_id(flow, f"bus:{agent}:{slot}")
            try:
                view = await asyncio.wait_for(session_view(client, flow, f"bus:{agent}:{slot}"),
                                              10)  # fmt: skip
            except Exception:
                counts = await session_counts(client, workflow_id, 5)
                total = total + counts if counts else total
                continue
            total = total + view.counts
            queued += len(view.queued) + (1 if view.current else 0)
        row = Tally(f"{flow}.{agent}", sent, total.emitted, total.processed,
                    total.dead_lettered, queued)  # fmt: skip
        if (row.ok and queued == 0) or time.monotonic() > deadline:
            return row
        await asyncio.sleep(2)


def model_requests(
    llm: FaultyLLM, faults: list[Fault], base: dict[str, int]
) -> tuple[dict[str, int], list[str]]:
    """Totals of requests and faults; each conversation's requests beyond its ``base`` (the
    steps its agent needs) plus one per failed request (429, 500, cut stream)."""
    totals: Counter[str] = Counter()
    beyond = []
    for key, tally in llm.tallies.items():
        totals["requests"] += tally.requests
        totals.update(tally.faults)
        failed = tally.faults["429"] + tally.faults["500"] + tally.faults["cut"]
        extra = tally.requests - base.get(key, 0) - failed
        cause = next(
            (why for at in tally.times if (why := near_fault(at, faults) or _killed(at, faults))),
            None,
        )
        if extra and cause:
            totals["repeated_at_fault"] += extra
        elif extra:
            beyond.append(f"{key}: {tally.requests} requests, {failed} failed, expected "
                          f"{base.get(key, 0)} + {failed}")  # fmt: skip
    gaps = [gap for tally in llm.tallies.values() for gap in tally.retry_gaps]
    totals["retry_after_seconds"] = llm.rates.retry_after_seconds
    totals["min_gap_after_429_ms"] = int(min(gaps) * 1000) if gaps else -1
    totals["gaps_shorter_than_retry_after"] = sum(
        gap < llm.rates.retry_after_seconds for gap in gaps
    )
    return dict(totals), beyond


def _killed(at: float, faults: list[Fault]) -> str | None:
    """A worker kill this request was in flight at (within an agent's timeout before it)."""
    for fault in faults:
        if fault.pid is not None and fault.at - FAULT_MARGIN_SECONDS <= at <= fault.at:
            return fault.what
    return None


async def histories(client: Client) -> dict[str, object]:
    """The longest and largest history of every run on the server."""
    longest, largest, runs, over = 0, 0, 0, []
    async for row in client.list_workflows(""):
        runs += 1
        length, size = row.history_length, int(row.raw_info.history_size_bytes)
        if row.status == WorkflowExecutionStatus.RUNNING:  # visibility's figures are stale
            info = (await client.get_workflow_handle(row.id, run_id=row.run_id).describe()
                    ).raw_description.workflow_execution_info  # fmt: skip
            length, size = int(info.history_length), int(info.history_size_bytes)
        longest, largest = max(longest, length), max(largest, size)
        if length > MAX_HISTORY_EVENTS or size > MAX_HISTORY_BYTES:
            over.append(f"{row.id} ({length} events, {size} bytes)")
    return {"runs": runs, "max_events": longest, "max_bytes": largest, "over_limits": over}
