"""Search attributes, UI summaries and the visibility listing of runs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from agentflow import names
from agentflow.client import visibility
from agentflow.client.runner import Runner
from agentflow.errors import AgentflowError, ConfigError
from agentflow.models import attributes
from agentflow.worker.serve import serving
from tests.conftest import flow_config, flow_runner


async def test_runs_carry_search_attributes_and_summaries(client: Client) -> None:
    config = flow_config("sequential", {"a": "tests.agents:append"}, sequential_agents=["a"])
    session = f"s-{uuid.uuid4().hex[:8]}"
    async with flow_runner(client, config) as runner:
        handle = await runner.start({"x": 1}, session_id=session)
        await handle.result()
    description = await handle.handle.describe()
    attrs = description.typed_search_attributes
    assert attrs.get(names.FLOW) == "test-sequential"
    assert attrs.get(names.MODE) == "sequential"
    assert attrs.get(names.SESSION) == session
    summary = await description.static_summary()
    assert summary == f"test-sequential · sequential · input {attributes.input_digest({'x': 1})}"
    details = await description.static_details()
    assert details is not None and session in details and "Agents: a" in details


async def test_visibility_query_by_session_finds_exactly_its_runs(client: Client) -> None:
    config = flow_config("sequential", {"a": "tests.agents:append"}, sequential_agents=["a"])
    mine, other = f"s-{uuid.uuid4().hex[:8]}", f"s-{uuid.uuid4().hex[:8]}"
    async with flow_runner(client, config) as runner:
        handles = [await runner.start({}, session_id=s) for s in (mine, mine, other)]
        await asyncio.gather(*(h.result() for h in handles))
        await runner.start({})  # no session at all
    expected = {handles[0].workflow_id, handles[1].workflow_id}
    found: set[str] = set()
    for _ in range(100):  # visibility is eventually consistent
        found = {run.id async for run in visibility.list_runs(client, session=mine)}
        if len(found) >= len(expected):
            break
        await asyncio.sleep(0.1)
    assert found == expected
    completed = {
        run.id async for run in visibility.list_runs(client, session=mine, status="completed")
    }
    assert completed == expected
    assert not [run async for run in visibility.list_runs(client, session=mine, status="failed")]


def test_visibility_query_quotes_values_and_rejects_unknown_status() -> None:
    query = visibility.visibility_query(session="it's", flow="f", status="timed-out")
    assert query == (
        "AgentflowFlow IS NOT NULL AND AgentflowSession = 'it\\'s' "
        "AND AgentflowFlow = 'f' AND ExecutionStatus = 'TimedOut'"
    )
    with pytest.raises(ConfigError, match="--status: unknown 'done'"):
        visibility.visibility_query(status="done")


async def test_unregistered_search_attribute_names_the_fix(client: Client) -> None:
    namespace = f"bare-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=timedelta(days=1)
        )
    )
    bare = Client(**{**client.config(), "namespace": namespace})
    runner = Runner(
        flow_config("sequential", {"a": "tests.agents:append"}, sequential_agents=["a"]), bare
    )
    error: BaseException | None = None
    for _ in range(100):  # a new namespace takes a moment to be usable
        try:
            await runner.start({})
        except RPCError as err:
            if "not found" not in err.message:
                raise
            await asyncio.sleep(0.2)
            continue
        except AgentflowError as err:
            error = err
        break
    assert error is not None
    message = str(error)
    assert f"temporal operator search-attribute create --namespace {namespace}" in message
    assert "--name AgentflowSession --type Keyword" in message
    # A worker refuses such a namespace at start: a run upserting a missing attribute (an
    # approval that starts waiting) would fail its workflow task for ever.
    config = flow_config("sequential", {"a": "tests.agents:append"}, sequential_agents=["a"])
    with pytest.raises(AgentflowError) as refused:
        async with serving(bare, [(config, None)]):
            pass
    assert "AgentflowApproval" in str(refused.value)
    assert "--name AgentflowApproval --type KeywordList" in str(refused.value)
