"""The soak (``make soak``, soak/) at a tiny size, so the harness cannot rot: 2 sessions, 20
events, one worker process, SIGKILLed mid-load and restarted; every event accounted for
and no agent call run twice except at the kill; one bad input of each kind, each refused or
dead-lettered. Plus its accounting fed a ledger with
faults planted, to show its checks fail when something is lost or repeated."""

from __future__ import annotations

from pathlib import Path

import pytest

from soak.account import Entry, Tally, read_ledger, repeats
from soak.bad import KINDS
from soak.faults import Fault, FaultPlan
from soak.report import checks, passed
from soak.run import Size, soak


async def test_tiny_soak_accounts_for_every_event_across_a_worker_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "unset")  # the soak points it at its own server
    plan = FaultPlan(kills=[(0.4, 0)], server_kill=None, cut=None)
    size = Size(sessions=2, events=20, turns=0, minutes=0.2, plan=plan, bad=len(KINDS),
                parts=frozenset({"sessions", "bad"}), workers=1)  # fmt: skip
    data = await soak(size, tmp_path)

    assert [fault["what"] for fault in data["faults"]] == ["SIGKILL worker w1"]
    # Its first life and the restarted one (a third when a restart found the tree mid-edit:
    # Worker.start_patiently tries again).
    assert len(data["rss"]["w1"]["pids"]) >= 2
    rows = [row for row in data["sessions"] if ":probe" not in row["name"]]
    assert [(row["name"], row["sent"], row["emitted"], row["unaccounted"])
            for row in sorted(rows, key=lambda row: str(row["name"]))] == [
        ("soak-sessions:s000", 10, 10, 0), ("soak-sessions:s001", 10, 10, 0),
    ]  # fmt: skip
    assert sum(row["processed"] for row in rows) == 20
    probes = [row for row in data["sessions"] if ":probe" in row["name"]]  # one a second
    assert probes and all(row["unaccounted"] == 0 for row in probes)
    ran = {entry.key for entry in read_ledger(tmp_path / "ledger")}
    assert {key for key in ran if key.startswith("ev")} == {
        f"ev{i:06d}:{agent}:0" for i in range(20) for agent in "ab"
    }
    # One bad input of each kind: each refused at the client or dead-lettered, none lost.
    kinds = data["bad_input"]["kinds"]
    assert {kind: (row["sent"], row["unaccounted"]) for kind, row in kinds.items()} == {
        kind: (1, 0) for kind in KINDS
    }
    refused = [kind for kind, row in kinds.items() if row["refused"]]
    assert refused == ["too_large", "metadata_not_json", "unknown_agent", "denied_topic"]
    assert [next(iter(kinds[k]["dead_lettered"])).split(":")[0]
            for k in ("unknown_target_in_handler", "expired_deadline")] == [
        "agent failed", "deadline passed",
    ]  # fmt: skip
    assert kinds["unknown_flow"]["held"] == kinds["unknown_flow"]["held_in_history"] == 1
    assert "no enabled agent 'nobody'" in next(iter(kinds["unknown_agent"]["refused"]))
    emits = data["bad_input"]["latency"]["emit"]  # every good emit timed (most near the kill)
    assert emits["with_bad"]["n"] + emits["without"]["n"] + emits["left_out_at_faults"] == 20
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
        "bad_input": {"kinds": {"too_large": {"sent": 2, "refused": {"too big": 1},
                                              "dead_lettered": {}, "held": 0, "other": {},
                                              "unaccounted": 1}},
                      "latency": {"event": {"with_bad": {"n": 9, "p50_ms": 80, "p95_ms": 90},
                                            "without": {"n": 9, "p50_ms": 20, "p95_ms": 30},
                                            "noise_p50_ms": 3, "noise_p95_ms": 4}}},
        "hostile": {"files": ["tests/test_hostile_input.py"], "exit_code": 1, "passed": False,
                    "summary": "1 failed, 9 passed", "seconds": 50.0},
    }  # fmt: skip
    failed = [check for check, _, _, ok in checks(data) if not ok]
    assert len(failed) == 6 and not passed(data)
    assert failed[0].startswith("sessions: emitted = processed")
    assert failed[1].startswith("ordered subscriber") and failed[2].startswith("agent and tool")
    assert failed[3].startswith("bad input too_large") and failed[4].startswith("good event")
    assert failed[5].startswith("hostile-input suite")
