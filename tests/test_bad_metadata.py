"""Metadata that JSON cannot encode (a lone surrogate in a key or a value) is refused with one
line naming it, by ``Runner.emit``, ``new_event`` and ``Runner.publish``, before anything is
sent. The soak's bad input found it: such an emit failed inside the serializer
(``PydanticSerializationError: ... surrogates not allowed``), a message that names neither the
metadata nor the key."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow.client.inputs import make_event
from agentflow.client.runner import Runner
from agentflow.errors import ConfigError
from tests.conftest import flow_config

CONFIG = flow_config("sequential", {"a": "tests.agents:noop"}, sequential_agents=["a"],
                     tables={"bus": {"publishes": ["orders.*"]}})  # fmt: skip


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"note": "ok \ud800"}, "metadata.note: text holds a lone surrogate (\\ud800)"),
        ({"\udc00": "v"}, "metadata: a key holds a lone surrogate (\\udc00)"),
    ],
)
async def test_metadata_json_cannot_encode_is_one_line(
    metadata: dict[str, Any], expected: str
) -> None:
    runner = Runner(CONFIG, task_queue="nowhere")  # refused before it connects
    with pytest.raises(ConfigError) as emitted:
        await runner.emit({"n": 1}, session_id="s", metadata=metadata)
    assert str(emitted.value).startswith(expected)
    with pytest.raises(ConfigError) as made:
        make_event("a", {"n": 1}, metadata)
    assert str(made.value) == str(emitted.value)
    with pytest.raises(ConfigError) as published:
        await runner.publish("orders.new", {"n": 1}, metadata=metadata)
    assert str(published.value).startswith(expected)


async def test_metadata_that_encodes_still_passes() -> None:
    event = make_event("a", {"n": 1}, {"note": "café ☕ \U0001f600"})
    assert event.metadata["note"] == "café ☕ \U0001f600"
