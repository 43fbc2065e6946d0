"""``new_event(target, data, metadata)`` without a config, its metadata keys (session_id,
priority, deadline/timeout, route), and ``Runner.emit(event)`` against a real dev server:
a route in metadata picks the agent once and never reaches ``state.meta``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from temporalio.client import Client

from agentflow.client.inputs import make_event as new_event
from agentflow.client.inputs import parse_timeout
from agentflow.errors import ConfigError
from agentflow.models.flow import Event
from tests.conftest import flow_config, flow_runner


def test_metadata_keys_set_session_priority_deadline_and_target() -> None:
    at = "2031-01-02T03:04:05Z"
    meta = {"session_id": "s-1", "priority": "high", "deadline": at, "route": "analyzer", "x": "y"}
    event = new_event("analyzer", {"q": 1}, meta)
    assert (event.target_agent, event.session_id, event.priority) == ("analyzer", "s-1", "high")
    assert event.deadline == datetime(2031, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    # route becomes the target and leaves the metadata: nothing can route the event twice.
    assert event.metadata == {"session_id": "s-1", "priority": "high", "deadline": at, "x": "y"}
    assert new_event("", metadata={"route": "b"}).target_agent == "b"


def test_timeout_sets_a_deadline_and_the_earlier_of_both_wins() -> None:
    before = datetime.now(timezone.utc)
    event = new_event("a", metadata={"timeout": "30s"})
    assert event.deadline is not None
    assert timedelta(seconds=29) < event.deadline - before < timedelta(seconds=31)
    both = new_event("a", metadata={"timeout": "1h", "deadline": "2000-01-01T00:00:00+01:00"})
    assert both.deadline == datetime(1999, 12, 31, 23, tzinfo=timezone.utc)
    assert [parse_timeout(text).total_seconds() for text in ("1m30s", "250ms", "2.5", "1d")] == [
        90, 0.25, 2.5, 86400]  # fmt: skip


def test_without_a_session_it_is_left_for_emit_to_choose() -> None:
    event = new_event("a", {})
    assert event.session_id == "" and "session_id" not in event.metadata
    assert "id" not in event.model_fields_set  # emit() inside a handler derives one
    assert new_event("a", event_id="e-1").id == "e-1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(target="a", metadata={"route": "b"}),
         "target 'a' and metadata 'route' 'b' disagree; give one of them"),
        (dict(metadata={"session_id": "x"}, session_id="y"),
         "session_id 'y' and metadata 'session_id' 'x' disagree"),
        (dict(metadata={"priority": "low"}, priority="high"),
         "priority 'high' and metadata 'priority' 'low' disagree"),
        (dict(metadata={"priority": "urgent"}),
         "metadata 'priority': unknown 'urgent'; allowed: low, normal, high, critical"),
        (dict(metadata={"deadline": "2031-01-02T03:04:05"}), "metadata 'deadline': "
         "'2031-01-02T03:04:05' has no UTC offset"),
        (dict(metadata={"deadline": "tomorrow"}), "'tomorrow' is not an ISO 8601 time"),
        (dict(metadata={"timeout": "soon"}), "metadata 'timeout': 'soon' is not a duration"),
        (dict(metadata={"timeout": "0s"}), "must be positive"),
        (dict(metadata={"timeout": "30s"}, within=timedelta(seconds=5)),
         "deadline: given both as a keyword (deadline/within) and in metadata"),
        (dict(metadata={"session_id": "s" * 300}), "--session: 300 bytes; at most 256"),
        (dict(metadata={"n": 1}), "metadata 'n': 1; metadata keys and values are strings"),
    ],
)  # fmt: skip
def test_bad_metadata_is_one_clear_error(kwargs: dict[str, object], message: str) -> None:
    target = str(kwargs.pop("target", "a"))
    with pytest.raises(ConfigError) as raised:
        new_event(target, {}, **kwargs)  # type: ignore[arg-type]
    assert message in str(raised.value) and "\n" not in str(raised.value)


async def test_runner_emits_an_event_and_route_in_metadata_does_not_leak(client: Client) -> None:
    config = flow_config("route", {"a": "tests.agents:append", "b": "tests.agents:append"})
    async with flow_runner(client, config) as runner:
        event = new_event("", {"trail": []}, {"route": "b", "session_id": "seeded",
                                              "priority": "high", "tag": "t"})  # fmt: skip
        handle = await runner.emit(event, wait=True)
        outcome = await handle.outcome()
        assert (handle.event_id, handle.session_id) == (event.id, "seeded")
        assert outcome.status == "completed" and outcome.result is not None
        assert outcome.result.path == ["b"]  # routed once, to b
        assert "route" not in outcome.result.state.meta
        assert outcome.result.state.meta["tag"] == "t"
        # An Event built by hand is read the same way; a keyword beside it is refused.
        by_hand = Event(metadata={"route": "a", "session_id": "seeded"})
        result = await (await runner.emit(by_hand, wait=True)).result()
        assert result.path == ["a"] and "route" not in result.state.meta
        with pytest.raises(ConfigError, match=r"^emit\(event\): target: set these on the event"):
            await runner.emit(by_hand, target="b")
        with pytest.raises(ConfigError, match="--target: no enabled agent 'zz'; enabled agents"):
            await runner.emit(new_event("zz"))
