"""Signed bus events ([security] signing_keys_env) and subscribers' accepts_from, against the
dev server: what is signed is delivered; unsigned, forged or tampered events and refused
publishers are dead-lettered by the bus and delivered to no one."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow.client.bus import client_request, publish
from agentflow.client.dead_letters import list_letters
from agentflow.client.runner import Runner
from agentflow.client.sessions import emit
from agentflow.client.signing import SigningRing, forget_signing, parse_signing_keys, signing_ring
from agentflow.config import SecurityConfig
from agentflow.errors import ConfigError
from agentflow.models.bus import PUBLISHER, TOPIC, PublishRequest, bus_config, shard_session
from agentflow.models.flow import Event
from agentflow.names import BUS_TASK_QUEUE
from tests.test_bus_durable import bus_flow, lines, served, unique, until

ENV = "AGENTFLOW_TEST_SIGNING_KEYS"


def key(seed: int) -> str:
    return base64.b64encode(bytes([seed]) * 32).decode()


def test_keys_sign_verify_and_rotate() -> None:
    old = SigningRing(parse_signing_keys(f"k1={key(1)}", "t"), "t")
    both = SigningRing(parse_signing_keys(f"k1={key(1)}, k2={key(2)}", "t"), "t")
    request = PublishRequest(topic="a.b", data={"n": 1}, event_id="e", publisher="client x")
    signed = both.sign(request)
    assert signed.signing_key == "k2" and both.problem(signed) is None  # the newest signs
    assert old.problem(old.sign(request)) is None and both.problem(old.sign(request)) is None
    assert "not one of" in str(old.problem(signed))  # k2 was never given to it
    tampered = signed.model_copy(update={"data": {"n": 2}})
    assert "does not match" in str(both.problem(tampered))
    assert "does not match" in str(both.problem(signed.model_copy(update={"publisher": "a.b"})))
    assert both.problem(request) == "the event is not signed"
    bad_specs = [
        (f"k1={key(1)[:20]}", "bytes; at least 32"),
        ("k1", "bad signing key"),
        ("k1=@@", "not valid base64"),
        (f"k1={key(1)} k1={key(2)}", "twice"),
    ]
    for bad, says in bad_specs:
        with pytest.raises(ConfigError, match=says):
            parse_signing_keys(bad, "t")
    with pytest.raises(ConfigError, match=r"no signing keys found in \$NOPE"):
        signing_ring(SecurityConfig(signing_keys_env="NOPE"), {})
    assert signing_ring(SecurityConfig(), {}) is None


def test_accepts_from_is_checked_at_load() -> None:
    def problem(table: dict[str, Any]) -> str:
        with pytest.raises(ConfigError) as err:
            bus_flow("f", {"w": {}, "s": {"subscribes": ["t"], **table}})
        return str(err.value)

    assert "agents.s.accepts_from[0]: 'f.ghost' names no agent of flow 'f'" in problem(
        {"accepts_from": ["f.ghost"]}
    )
    assert "'billing' names no publisher" in problem({"accepts_from": ["billing"]})
    assert "accepts nothing" in problem({"accepts_from": []})
    with pytest.raises(ConfigError, match="subscribes to nothing"):
        bus_flow("f", {"w": {"accepts_from": ["client *"]}})


async def test_signed_events_are_delivered_and_others_dead_lettered(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, f"old={key(7)},new={key(8)}")
    security = {"signing_keys_env": ENV}
    topic, log = unique("signed") + ".t", tmp_path / "log"
    pub_name = unique("pub")
    sub = bus_flow(unique("sub"), {"open": {"subscribes": [topic]},
                                   "picky": {"subscribes": [topic],
                                             "accepts_from": [f"{pub_name}.writer"]}},
                   security=security)  # fmt: skip
    pub = bus_flow(pub_name, {"writer": {}}, security=security)
    letters: list[Any] = []
    try:
        async with served(client, sub) as sub_queue, served(client, pub) as queue:
            # A client's publish, signed with its file's keys: "picky" refuses clients.
            await publish(client, client_request(sub, topic, _data(log, 0), identity="t"))
            await Runner(sub, client, sub_queue).publish(topic, _data(log, 6))  # as the CLI
            # An agent's publish, signed by its worker.
            await Runner(pub, client, queue).run({**_data(log, 1), "publish": {"writer": topic}})
            await until(lambda: _delivered(log, 4))
            # Unsigned, straight into a bus shard; tampered after signing; signed by a stranger.
            await _emit_unsigned(topic, _data(log, 2), client)
            signed = client_request(sub, topic, _data(log, 3), identity="t")
            tampered = signed.model_copy(update={"data": _data(log, 4)})
            stranger = SigningRing({"new": base64.b64decode(key(9))}, "someone else's")
            forged = stranger.sign(client_request(sub, topic, _data(log, 5), identity="t"))
            for request in (tampered, forged):
                await publish(client, request)

            async def found() -> bool:
                letters[:] = [x async for x in list_letters(client, flow="agentflow-bus")
                              if topic in (x.error or "") or sub.name in (x.error or "")
                              or "signature invalid" in (x.error or "")]  # fmt: skip
                reasons = [x.reason for x in letters]
                # Three bad signatures; two clients ("t" and the Runner's) refused by "picky".
                return reasons.count("signature invalid") >= 3 and (
                    reasons.count("publisher refused") >= 2
                )

            await until(found)
    finally:
        forget_signing(client)
    got = sorted((line["agent"], line["n"]) for line in lines(log) if line["agent"] != "writer")
    assert got == [("open", 0), ("open", 1), ("open", 6), ("picky", 1)]  # none of 2 to 5
    invalid = [x for x in letters if x.reason == "signature invalid"]
    errors = " | ".join(x.error or "" for x in invalid)
    assert "the event is not signed" in errors and "does not match the event" in errors
    refused = " | ".join(x.error or "" for x in letters if x.reason == "publisher refused")
    assert f"subscriber {sub.name}.picky does not accept publisher 'client t'" in refused


def _data(log: Path, n: int) -> dict[str, Any]:
    return {"log_file": str(log), "n": n}


async def _delivered(log: Path, count: int) -> bool:
    return len([line for line in lines(log) if line["agent"] != "writer"]) >= count


async def _emit_unsigned(topic: str, data: dict[str, Any], client: Client) -> None:
    """What a client without the keys could do: emit an event into the bus itself."""
    event_id = unique("raw")
    event = Event(id=event_id, session_id=shard_session(None, event_id), data=data,
                  metadata={TOPIC: topic, PUBLISHER: "client intruder"},
                  source_agent="client intruder")  # fmt: skip
    event.metadata["session_id"] = event.session_id
    await emit(client, bus_config(), BUS_TASK_QUEUE, event)
    assert os.environ[ENV]  # the keys were there all along: the event simply had no signature
