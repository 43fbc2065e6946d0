"""Bad input under load: at a low rate, events too large to send, metadata JSON cannot encode,
unknown targets (an agent the flow lacks, a flow no worker serves, an agent a handler emits
to that does not exist), emits whose deadline has passed, and publishes to topics the flow
may not publish to. Each must end as a clear refusal at the client (an AgentflowError) or a
dead letter with a reason; the soak counts each kind and what became of it.

The bad input is sent only in every other slice of the load window (``Phases``), so the good
traffic's latency can be compared with and without it in one run, faults and drift alike."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.client import Client

from agentflow.client.runner import Runner
from agentflow.client.sessions import event_outcome
from agentflow.errors import AgentflowError
from agentflow.names import EMIT_BY_KEY_SIGNAL, EMIT_SIGNAL, session_workflow_id
from soak.retry import patiently

KINDS = ("too_large", "metadata_not_json", "unknown_agent", "unknown_flow",
         "unknown_target_in_handler", "expired_deadline", "denied_topic")  # fmt: skip
SLICES = 8  # the load window's slices; bad input goes out in the odd ones
GHOST_SESSION = "ghost"  # the session of the flow no worker serves
MESSAGE_CHARS = 200


@dataclass
class Kind:
    """What became of one kind of bad input."""

    sent: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # message seen -> count
    dead_lettered: Counter[str] = field(default_factory=Counter)  # reason: error -> count
    held: int = 0  # accepted and waiting for a worker (the flow no worker serves)
    other: Counter[str] = field(default_factory=Counter)  # anything else: unaccounted

    @property
    def unaccounted(self) -> int:
        done = sum(self.refused.values()) + sum(self.dead_lettered.values()) + self.held
        return self.sent - done


@dataclass
class Phases:
    """Which moments of the load window have bad input (odd slices) and which have none."""

    began: float  # time.time() when the load began
    window: float

    def with_bad(self, at: float) -> bool:
        return int((at - self.began) / (self.window / SLICES)) % 2 == 1

    def times(self, count: int) -> list[float]:
        """``count`` moments spread evenly over the slices with bad input."""
        width = self.window / SLICES
        odd = [self.began + width * i for i in range(1, SLICES, 2)]
        step = width * len(odd) / max(count, 1)
        return [odd[int(i * step // width)] + (i * step) % width for i in range(count)]


@dataclass
class Targets:
    """The runners bad input goes through."""

    sessions: Runner  # soak-sessions (served)
    stray: Runner  # soak-bad: its agent emits to an agent that does not exist; publishes
    # to soak.bad.* only
    ghost: Runner  # soak-ghost: no worker serves it


async def send_bad(targets: Targets, count: int, phases: Phases) -> dict[str, Kind]:
    """``count`` bad inputs, the kinds in turn, at the moments ``phases`` gives."""
    kinds = {kind: Kind() for kind in KINDS}
    tasks = []
    for i, at in enumerate(phases.times(count)):
        await asyncio.sleep(max(0.0, at - time.time()))
        kind = KINDS[i % len(KINDS)]
        tasks.append(asyncio.create_task(_one(targets, kind, f"bad{i:04d}", kinds[kind])))
    await asyncio.gather(*tasks)
    return kinds


def _seen(text: str) -> str:
    """A message or reason as the report groups it: times replaced, cut short."""
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(\+00:00|Z)?", "TIME", text)[:MESSAGE_CHARS]


async def _one(targets: Targets, kind: str, key: str, book: Kind) -> None:
    book.sent += 1
    try:
        outcome = await _send(targets, kind, key)
    except AgentflowError as err:  # ConfigError and the library's other clear refusals
        book.refused[_seen(str(err))] += 1
        return
    except Exception as err:  # an unclear error (a serializer's, the server's): unaccounted
        book.other[_seen(f"{type(err).__name__}: {err}")] += 1
        return
    if outcome is None:
        book.held += 1  # counted again at the end from the ghost session's history
    elif outcome[0] == "dead_lettered":
        book.dead_lettered[_seen(outcome[1])] += 1
    else:
        book.other[_seen(f"ended as {outcome[0]}: {outcome[1]}")] += 1


async def _send(targets: Targets, kind: str, key: str) -> tuple[str, str] | None:
    """Send one bad input; the (status, reason) it ended with, None when it is held."""
    data: dict[str, Any] = {"key": key}
    flow = targets.sessions
    if kind == "too_large":
        await flow.emit({**data, "blob": "x" * 2_200_000}, session_id="bad", event_id=key)
    elif kind == "metadata_not_json":  # text JSON cannot encode, or a value not text at all
        odd = int(key[3:]) // len(KINDS) % 2
        metadata: dict[str, Any] = {"note": "cut \ud800"} if odd else {"count": 3}
        await flow.emit(data, session_id="bad", event_id=key, metadata=metadata)
    elif kind == "unknown_agent":
        await flow.emit(data, session_id="bad", event_id=key, target="nobody")
    elif kind == "unknown_flow":
        await patiently(lambda: targets.ghost.emit(data, session_id=GHOST_SESSION,
                                                   event_id=key), "emit")  # fmt: skip
        return None
    elif kind == "denied_topic":
        await targets.stray.publish("soak.denied", data, event_id=key)
    else:
        past = datetime.now(timezone.utc) - timedelta(minutes=1)
        runner, options = (
            (flow, {"session_id": "bad-deadline", "deadline": past})
            if kind == "expired_deadline"
            else (targets.stray, {"session_id": "bad-stray"})
        )
        await patiently(lambda: runner.emit(data, event_id=key, **options), "emit")
        client = await runner.client()
        workflow_id = session_workflow_id(runner.config.name, str(options["session_id"]))
        outcome = await patiently(
            lambda: asyncio.wait_for(event_outcome(client, workflow_id, key), 60), "outcome"
        )
        return outcome.status, f"{outcome.reason}: {outcome.error or ''}"
    return "accepted", "the client let it through"


async def held(client: Client, ghost: Runner) -> int:
    """Events the ghost session holds: the distinct events of the emit signals in its history
    (``emit``, or ``emit_by_key`` once it has the config; no worker ever ran it; a repeated
    emit after a lost reply is one event)."""
    handle = client.get_workflow_handle(session_workflow_id(ghost.config.name, GHOST_SESSION))
    try:
        history = await patiently(handle.fetch_history, "ghost history")
    except Exception:  # no such session: nothing held
        return 0
    ids = set()
    for event in history.events:
        signaled = event.workflow_execution_signaled_event_attributes
        if event.HasField("workflow_execution_signaled_event_attributes") and (
            signaled.signal_name in (EMIT_SIGNAL, EMIT_BY_KEY_SIGNAL)
        ):
            ids.add(json.loads(signaled.input.payloads[0].data)["event"]["id"])
    return len(ids)


def summary(kinds: dict[str, Kind], ghost_held: int) -> dict[str, Any]:
    """The report's rows: per kind, what was sent and what became of it."""
    out = {}
    for name, kind in kinds.items():
        # Not asdict: it rebuilds a Counter from its (key, count) pairs, counting the pairs.
        row: dict[str, Any] = {
            "sent": kind.sent, "refused": dict(kind.refused),
            "dead_lettered": dict(kind.dead_lettered), "held": kind.held,
            "other": dict(kind.other), "unaccounted": kind.unaccounted,
        }  # fmt: skip
        if name == "unknown_flow":
            row["held_in_history"] = ghost_held
            if ghost_held != kind.held:  # the session holds fewer (or more) than were sent
                row["unaccounted"] = kind.sent - ghost_held
        out[name] = row
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def latency(samples: list[tuple[float, float]], phases: Phases,
            quiet: list[tuple[float, float]]) -> dict[str, Any]:  # fmt: skip
    """Good traffic's latency (start, seconds) with bad input and without, in ms; samples
    that began in ``quiet`` (faults, with a margin) are left out of both. The noise: how far
    apart the two halves of the slices without bad input are (slices 0, 4 against 2, 6)."""
    kept = [(at, s) for at, s in samples if not any(a <= at <= b for a, b in quiet)]
    width = phases.window / SLICES

    def stats(values: list[float]) -> dict[str, float]:
        return {"n": len(values), "p50_ms": round(_percentile(values, 0.5) * 1000, 1),
                "p95_ms": round(_percentile(values, 0.95) * 1000, 1)}  # fmt: skip

    with_bad = [s for at, s in kept if phases.with_bad(at)]
    without = [s for at, s in kept if not phases.with_bad(at)]
    halves = [[s for at, s in kept if not phases.with_bad(at)
               and int((at - phases.began) / width) % 4 == h] for h in (0, 2)]  # fmt: skip
    a, b = stats(halves[0]), stats(halves[1])
    return {
        "with_bad": stats(with_bad),
        "without": stats(without),
        "noise_p50_ms": round(abs(a["p50_ms"] - b["p50_ms"]), 1),
        "noise_p95_ms": round(abs(a["p95_ms"] - b["p95_ms"]), 1),
        "left_out_at_faults": len(samples) - len(kept),
    }
