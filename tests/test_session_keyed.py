"""``emit(..., wait=True)`` names the event's config by key (``emit_and_wait_by_key``): the
config travels once, in the session's start input, not in every event and its history. A
session run that does not have the key says so, and the client sends the config with the
event instead (``emit_and_wait``); a run hands its recent configs on across continue-as-new.
Also: the golden history of that path replays (``python -m tests.test_session_keyed``
records it), and the payloads ``emit`` builds from cached JSON read back as the models they
stand for."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import WorkflowSerializationContext
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from agentflow.client.payloads import (
    SharedPydanticPayloadConverter,
    shared_payload_converter,
    with_storage,
)
from agentflow.client.runner import Runner
from agentflow.client.session_payloads import as_model, encoded_config, encoded_event, start_input
from agentflow.client.sessions import session_view
from agentflow.config import FlowConfig
from agentflow.inspect.trace.read import run_histories
from agentflow.models.flow import Event
from agentflow.models.session import EmitByKey, EmitRequest, SessionState, config_key
from agentflow.names import EMIT_AND_WAIT_UPDATE, EMIT_BY_KEY_UPDATE, session_workflow_id
from agentflow.worker.devserver_process import dev_server_args, temporal_binary
from agentflow.worker.plugin import ALL_WORKFLOWS
from tests.conftest import flow_config, running_worker

GOLDEN = Path(__file__).parent / "histories" / "sessions" / "keyed.json"
AGENTS = ["a", "b"]


def _config(version: str = "1.0", events_per_run: int = 3) -> FlowConfig:
    config = flow_config("sequential", dict.fromkeys(AGENTS, "tests.agents:noop"),
                         sequential_agents=AGENTS, local_agents=True,
                         tables={"sessions": {"events_per_run": events_per_run}})  # fmt: skip
    config.agent_flow.version = version
    return config


async def chain_inputs(
    client: Client, workflow_id: str, pick: Callable[[HistoryEvent], tuple[str, Payload] | None]
) -> list[tuple[str, dict[str, object]]]:
    """What ``pick`` finds in each event of the session's runs, in order: a name and an input,
    read as JSON."""
    found: list[tuple[str, dict[str, object]]] = []
    async for _, events in run_histories(client, workflow_id):
        for event in events:
            if (picked := pick(event)) is not None:
                found.append((picked[0], json.loads(picked[1].data)))
    return found


def accepted_update(event: HistoryEvent) -> tuple[str, Payload] | None:
    if not event.HasField("workflow_execution_update_accepted_event_attributes"):
        return None
    request = event.workflow_execution_update_accepted_event_attributes.accepted_request
    return request.input.name, request.input.args.payloads[0]


async def _updates(client: Client, workflow_id: str) -> list[tuple[str, dict[str, object]]]:
    """Each accepted Update of the session's runs: its name and its input as JSON."""
    return await chain_inputs(client, workflow_id, accepted_update)


async def _emit_keyed_and_fallback(client: Client, session: str) -> str:
    """Events by key into a live session; one with a config it has not seen and one after the
    session continued as new (both fall back to the config in the event). The session's id."""
    first, second = _config("1.0"), _config("1.1")
    async with running_worker(client, first) as queue:  # the agents are the same
        runner, changed = Runner(first, client, queue), Runner(second, client, queue)
        for n, who in enumerate([runner, runner, changed, runner, runner]):
            handle = await who.emit({"n": n}, session_id=session, event_id=f"k{n}", wait=True)
            assert (await handle.outcome()).status == "completed"
        # A repeat by key: the first outcome, counted as a duplicate, not run again.
        again = await runner.emit({"n": 0}, session_id=session, event_id="k0", wait=True)
        assert (await again.outcome()).status == "completed"
        view = await session_view(client, first.name, session)
    assert (view.counts.emitted, view.counts.completed, view.counts.duplicates) == (5, 5, 1)
    return session_workflow_id(first.name, session)


async def test_events_name_their_config_and_fall_back_when_the_session_lacks_it(
    client: Client,
) -> None:
    workflow_id = await _emit_keyed_and_fallback(client, f"keyed-{uuid.uuid4().hex[:6]}")
    updates = await _updates(client, workflow_id)
    names = [name for name, _ in updates]
    by_key, full = EMIT_BY_KEY_UPDATE, EMIT_AND_WAIT_UPDATE
    # k0, k1 by key (the start input carried the config); k2's config is new to the session:
    # told so, it is sent with its config; the session continued as new after 3 events and
    # handed both configs on, so k3, k4 and the repeat go by key.
    assert names == [by_key, by_key, by_key, full, by_key, by_key, by_key]
    keys = [config_key(_config(version)) for version in ("1.0", "1.0", "1.1", "1.0", "1.0")]
    assert [r["config_key"] for n, r in updates if n == by_key] == [*keys, keys[0]]
    for name, request in updates:
        assert ("config" in request) == (name == full)


async def test_payloads_built_from_cached_json_read_back_as_their_models(client: Client) -> None:
    config, start = _config(), SessionState(flow="x", session_id="s", max_queued_events=7)
    event = Event(id="e1", session_id="s", data={"ünï": [1, 2.5, None]}, metadata={"a": "b"})
    encoded = encoded_event(config, event, redrive_of='e0"q')
    assert encoded_config(config) is encoded.config  # encoded once per config object
    full = as_model(encoded.full(client), EmitRequest)
    assert full == EmitRequest(config=config, event=event, redrive_of='e0"q')
    keyed = as_model(encoded.by_key(client), EmitByKey)
    assert keyed == EmitByKey(config_key=config_key(config), event=event, redrive_of='e0"q')
    started = as_model(start_input(client, start, encoded.config), SessionState)
    assert started == start.model_copy(update={"configs": {config_key(config): config}})


async def test_pydantic_payload_converter_is_built_once() -> None:
    converter = await with_storage(pydantic_data_converter, None)
    assert converter.payload_converter_class is SharedPydanticPayloadConverter
    assert SharedPydanticPayloadConverter() is SharedPydanticPayloadConverter()
    context = WorkflowSerializationContext(namespace="default", workflow_id="w")
    assert converter.with_context(context).payload_converter is converter.payload_converter
    state = SessionState(flow="x", session_id="s")
    payload: Payload = converter.payload_converter.to_payloads([state])[0]
    assert converter.payload_converter.from_payloads([payload], [SessionState]) == [state]
    other = shared_payload_converter(pydantic_data_converter)
    assert isinstance(other.payload_converter, type(converter.payload_converter))
    assert issubclass(other.payload_converter_class, PydanticPayloadConverter)


async def replay_failure(golden: Path) -> Exception | None:
    """What replaying a golden history of the session raised, if anything."""
    history = WorkflowHistory.from_json(golden.stem, json.loads(golden.read_text()))
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    return (await replayer.replay_workflow(history)).replay_failure


async def recording_server() -> WorkflowEnvironment:
    """A dev server of its own to record a golden history on (`python -m tests.X`)."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=dev_server_args(),
        data_converter=pydantic_data_converter,
    )


async def test_keyed_golden_history_replays() -> None:
    assert await replay_failure(GOLDEN) is None


async def _record() -> None:
    async with await recording_server() as env:
        workflow_id = await _emit_keyed_and_fallback(env.client, "golden")
        handle = env.client.get_workflow_handle(workflow_id)
        first = (await handle.describe()).raw_description.workflow_execution_info.first_run_id
        history = await env.client.get_workflow_handle(workflow_id, run_id=first).fetch_history()
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(history.to_json())
    print(f"recorded {GOLDEN}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(_record())
