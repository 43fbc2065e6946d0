"""The bus keeps delivering when the worker that last ran its registry was killed.

The registry answers its query through a worker: the one it last ran on (its sticky worker)
first. A worker process registers a flow (its bus worker, the only one polling, runs the
registry), then is SIGKILLed: nothing can answer the query now. The registrations must still
be read, from the registry's history, within a bound; and an in-process worker must then get
a publish delivered (the registry no longer sticks to the dead worker).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from agentflow.client.bus import client_request, publish, registrations
from agentflow.client.bus_registrations import REGISTRY_QUERY_SECONDS, recorded_state
from agentflow.config import load_config
from agentflow.worker.serve import serving
from tests._worker_process import WorkerProcess, wait_for_lines
from tests.conftest import REPO

FLOW = """
[agent_flow]
name = "{flow}"

[orchestration]
mode = "sequential"
sequential_agents = ["reader"]

[agents.reader]
handler = "tests.agents:bus_agent"
subscribes = ["{topic}"]

[bus]
publishes = ["{topic}"]
"""


async def test_a_killed_registry_worker_does_not_stall_deliveries(
    client: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    suffix = uuid.uuid4().hex[:6]
    flow, topic, log = f"reg-down-{suffix}", f"reg-down-{suffix}.t", tmp_path / "log"
    path = tmp_path / "flow.toml"
    path.write_text(FLOW.format(flow=flow, topic=topic))
    config = load_config(path)
    address = client.service_client.config.target_host
    worker = WorkerProcess(path, f"{flow}-gone", address, tmp_path / "worker.log")
    await asyncio.to_thread(worker.start)  # registers the flow: its bus worker runs the registry
    worker.kill()

    with caplog.at_level(logging.WARNING, logger="agentflow.bus"):
        # Nothing polls the bus now: the query cannot be answered, the history can.
        found = await asyncio.wait_for(registrations(client), REGISTRY_QUERY_SECONDS + 10)
    assert found[flow].task_queue == f"{flow}-gone"
    assert "reading its registrations from its history" in caplog.text

    queue = f"{flow}-here"
    async with serving(client, [(config, REPO)], task_queue=queue):
        live = await registrations(client)  # answered by the query again
        assert live[flow].task_queue == queue
        assert (await recorded_state(client)).registrations[flow] == live[flow]
        request = client_request(config, topic, {"log_file": str(log)}, identity="test")
        await publish(client, request)
        await wait_for_lines(log, 1, timeout=30)
    [line] = [json.loads(text) for text in log.read_text().splitlines()]
    assert line["agent"] == "reader" and line["pid"] == os.getpid()
    assert line["meta"]["parent_event"] == request.event_id
