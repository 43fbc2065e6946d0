"""The soak (``make soak``, soak/) at a tiny size, so the harness cannot rot: 2 sessions, 20
events, one worker process, SIGKILLed mid-load and restarted; every event accounted for
and no agent call run twice except at the kill. Plus its accounting fed a ledger with
faults planted, to show its checks fail when something is lost or repeated."""

from __future__ import annotations

from pathlib import Path

import pytest

from soak.account import Entry, Tally, read_ledger, repeats
from soak.faults import Fault, FaultPlan
from soak.report import checks, passed
from soak.run import Size, soak


async def test_tiny_soak_accounts_for_every_event_across_a_worker_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "unset")  # the soak points it at its own server
    plan = FaultPlan(kills=[(0.4, 0)], server_kill=None, cut=None)
    size = Size(sessions=2, events=20, turns=0, minutes=0.2, plan=plan,
                parts=frozenset({"sessions"}), workers=1)  # fmt: skip
    data = await soak(size, tmp_path)

    assert [fault["what"] for fault in data["faults"]] == ["SIGKILL worker w1"]
    assert len(data["rss"]["w1"]["pids"]) == 2  # its first life and the restarted one
    assert [(row["name"], row["sent"], row["emitted"], row["unaccounted"])
            for row in data["sessions"]] == [
        ("soak-sessions:s000", 10, 10, 0), ("soak-sessions:s001", 10, 10, 0),
    ]  # fmt: skip
    assert sum(row["processed"] for row in data["sessions"]) == 20
    ran = {entry.key for entry in read_ledger(tmp_path / "ledger")}
    assert ran == {f"ev{i:06d}:{agent}:0" for i in range(20) for agent in "ab"}
    assert data["ledger"]["repeated_unexplained"] == []
    assert not data["histories"]["over_limits"]
    assert passed(data), checks(data)


def test_the_accounting_fails_on_a_lost_event_and_a_repeated_call() -> None:
    kill = Fault("SIGKILL worker w1", at=100.0, until=105.0, pid=11)
    ledger = [
        Entry("agent", "ev1:a:0", 11, 99.0), Entry("agent", "ev1:a:0", 12, 110.0),  # at the kill
        Entry("agent", "ev2:a:0", 12, 500.0), Entry("agent", "ev2:a:0", 12, 501.0),  # not
        Entry("tool", "llm-1", 12, 600.0),
    ]  # fmt: skip
    explained, unexplained = repeats(ledger, [kill])
    assert [line.split(":")[0] for line in explained] == ["agent ev1"]
    assert unexplained == ["agent ev2:a:0: 2 times (pids 12, 12)"]

    lost = Tally("soak-sessions:s000", sent=10, emitted=10, processed=8, dead_lettered=1,
                 queued=0)  # fmt: skip
    assert lost.unaccounted == 1 and not lost.ok
    data = {
        "size": {}, "faults": [], "runs": {}, "errors": [], "decisions": {},
        "sessions": [{"name": lost.name, "sent": 10, "emitted": 10, "processed": 8,
                      "dead_lettered": 1, "queued": 0, "unaccounted": 1}],
        "subscribers": [], "out_of_order": ["key k0: [0, 2, 1]"],
        "ledger": {"calls": 5, "repeated_at_fault": explained,
                   "repeated_unexplained": unexplained},
        "model_requests": {}, "requests_beyond_retries": [],
        "histories": {"runs": 1, "max_events": 10, "max_bytes": 10, "over_limits": []},
        "conversations": [], "rss": {},
    }  # fmt: skip
    failed = [check for check, _, _, ok in checks(data) if not ok]
    assert len(failed) == 3 and not passed(data)
    assert failed[0].startswith("sessions: emitted = processed")
    assert failed[1].startswith("ordered subscriber") and failed[2].startswith("agent and tool")
