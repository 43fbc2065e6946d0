"""The bus's golden histories: a flow run that publishes on the durable bus (one topic it may
publish, one it may not), the shard session that fans both out (a delivery, a dead letter),
the subscriber's delivery session, and the registry. Recorded by
``python -m tests.record_histories``.

``bus_registry`` was recorded when workers registered their flows with the registry's update;
they now signal it (``register_flow``, which needs no worker: ``agentflow register``), so the
registry is recorded as ``bus_registry_signals`` and the older history is kept as it was, to
show that registries from before still replay."""

from __future__ import annotations

import asyncio

from temporalio.client import Client, WorkflowHistory

from agentflow.client.bus import session_counts
from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, parse_config
from agentflow.models.bus import PublishRequest, delivery_session, shard_session, subscribers_of
from agentflow.names import BUS_FLOW, REGISTRY_WORKFLOW_ID, session_workflow_id
from agentflow.worker.serve import serving
from tests.conftest import REPO

BUS_GOLDENS = ("bus_publisher", "bus_shard", "bus_shard_denied", "bus_delivery", "bus_registry",
               "bus_registry_signals")  # fmt: skip
BUS = "tests.agents:bus_agent"


def _flow(name: str, agents: dict[str, dict[str, object]]) -> FlowConfig:
    raw = {
        "agent_flow": {"name": name},
        "orchestration": {"mode": "sequential", "sequential_agents": [next(iter(agents))]},
        "agents": {agent: {"handler": BUS, **table} for agent, table in agents.items()},
    }
    return parse_config(raw, base_dir=REPO, check_handlers=True)


async def record_bus_goldens(client: Client) -> dict[str, WorkflowHistory]:
    publisher = _flow("golden-publisher", {"writer": {"publishes": ["golden.ok"]}})
    subscriber = _flow("golden-subscriber", {"reader": {"subscribes": ["golden.*"]}})
    async with (
        serving(client, [(publisher, REPO)], task_queue="golden-pub") as pub_worker,
        serving(client, [(subscriber, REPO)], task_queue="golden-sub"),
    ):
        runner = Runner(publisher, client, pub_worker.task_queue)
        handle = await runner.start(
            {"publish": {"writer": "golden.ok,golden.denied"}}, workflow_id="golden-bus"
        )
        await handle.result()
        run_id = handle.run_id
        ok = f"{run_id}/1-writer/golden.ok"
        shard = session_workflow_id(BUS_FLOW, shard_session(None, ok))
        sub = subscribers_of(subscriber, "golden-sub")[0]
        request = PublishRequest(topic="golden.ok", event_id=ok, publisher="")
        delivery = session_workflow_id(subscriber.name, delivery_session(sub, request, 8))
        denied = f"{run_id}/1-writer/golden.denied"
        denied_shard = session_workflow_id(BUS_FLOW, shard_session(None, denied))
        await _until_counted(client, delivery, "completed")
        await _until_counted(client, denied_shard, "dead_lettered")
        return {
            "bus_publisher": await handle.handle.fetch_history(),
            "bus_shard": await client.get_workflow_handle(shard).fetch_history(),
            "bus_shard_denied": await client.get_workflow_handle(denied_shard).fetch_history(),
            "bus_delivery": await client.get_workflow_handle(delivery).fetch_history(),
            "bus_registry_signals": await client.get_workflow_handle(
                REGISTRY_WORKFLOW_ID
            ).fetch_history(),
        }


async def _until_counted(client: Client, workflow_id: str, count: str) -> None:
    for _ in range(600):
        counts = await session_counts(client, workflow_id, 5.0)
        if counts and getattr(counts, count):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{workflow_id}: no {count} event")
