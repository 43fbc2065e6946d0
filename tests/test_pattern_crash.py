"""Pattern workflows (``[patterns.NAME]``) across a SIGKILLed worker and a SIGKILLed and
restarted dev server (on a SQLite file, so its state survives): every match is published once,
and no window is lost — an absence window open at the kill closes while nothing runs and still
publishes; a sequence and a count half matched at the kill complete after the restarts."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from agentflow.client.dead_letters import list_letters
from agentflow.client.outcomes import event_outcome
from agentflow.client.patterns import open_windows
from agentflow.config import FlowConfig, load_config
from agentflow.models.bus import (
    PublishRequest,
    delivery_event_id,
    delivery_session,
    short_id,
    subscribers_of,
)
from agentflow.models.pattern import derived_event_id
from agentflow.names import pattern_workflow_id, session_workflow_id
from agentflow.worker.devserver_process import DevServer, port_in_use
from tests._worker_process import WorkerProcess
from tests.pattern_agents import lines
from tests.test_bus_durable import unique, until
from tests.test_patterns import flow_toml, kinds, result, send


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_flow(path: Path, name: str, p: str) -> Path:
    """A flow of the three kinds (sequence and count: 60 s windows, so they stay open across
    the restarts; absence: 8 s) whose ``watcher`` logs every derived event."""
    table = kinds(p)
    table["seq"]["within"] = table["cnt"]["within"] = "60s"
    table["abs"]["within"] = "8s"
    path.write_text(flow_toml(name, p, table))
    return path


async def delivered(client: Client, config: FlowConfig, queue: str, topic: str, key: str,
                    derived: str) -> str:  # fmt: skip
    """Wait for the watcher's delivery of the derived event ``derived``; its status."""
    sub = next(s for s in subscribers_of(config, queue) if s.agent == "watcher")
    request = PublishRequest(topic=topic, event_id=derived, key=key, publisher="p")
    session = delivery_session(sub, request, config.bus.max_parallel)
    workflow_id = session_workflow_id(config.name, session)

    async def started() -> bool:  # the delivery starts the subscriber's session
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return False
        return True

    await until(started, 30)
    return (await event_outcome(client, workflow_id, delivery_event_id(sub, derived))).status


async def test_a_killed_worker_and_server_lose_no_window_and_publish_each_match_once(
    tmp_path: Path,
) -> None:
    p, name, queue = unique("pc"), unique("pcrash"), unique("q")
    config = load_config(write_flow(tmp_path / "agentflow.toml", name, p))
    server = DevServer(port=free_port(), db=tmp_path / "temporal.db", headless=True,
                       log=tmp_path / "server.log", die_with_parent=True)  # fmt: skip
    server.start()
    worker = WorkerProcess(tmp_path / "agentflow.toml", queue, server.address,
                           tmp_path / "worker.log")  # fmt: skip
    try:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        worker.start()
        # c0: a sequence matched, and its derived event delivered, before anything is killed.
        c0 = [await send(client, config, f"{p}.cart.created", "c0"),
              await send(client, config, f"{p}.cart.paid", "c0")]  # fmt: skip
        seq_c0 = derived_event_id(name, "seq", "c0", c0)
        assert await delivered(client, config, queue, f"{p}.derived.seq", "c0", seq_c0) == (
            "completed"
        )
        # c1: a sequence and a count half matched, an absence window open; c2: an absence
        # window closed in time by its second event.
        created = await send(client, config, f"{p}.cart.created", "c1")
        failed = [await send(client, config, f"{p}.payment.failed", "c1") for _ in range(2)]
        placed = await send(client, config, f"{p}.order.placed", "c1")
        await send(client, config, f"{p}.order.placed", "c2")
        await send(client, config, f"{p}.order.shipped", "c2")

        async def windows_open() -> bool:
            views = {(v.name, v.key): v for v in await open_windows(client, name)}
            sizes = [len(w.ids) for n in ("seq", "cnt", "abs") if (n, "c1") in views
                     for w in views[(n, "c1")].windows]  # fmt: skip
            return sizes == [1, 2, 1]

        await until(windows_open, 30)
        worker.kill()  # SIGKILL inside every c1 window
        absence = client.get_workflow_handle(short_id(pattern_workflow_id(name, "abs", "c1")))

        async def timer_fired() -> bool:
            history = await absence.fetch_history()
            return any(e.event_type == EventType.EVENT_TYPE_TIMER_FIRED for e in history.events)

        assert not await timer_fired()  # the absence window was open at the kill
        assert server.process is not None
        server.process.kill()  # SIGKILL: what the server held in memory is gone
        assert server.process.wait() == -9

        async def port_free() -> bool:
            return not port_in_use("127.0.0.1", server.port)

        await until(port_free, 30)
        server.start()  # the same port and database file
        await until(timer_fired, 30)  # the absence window closed while no worker ran
        paid = await send(client, config, f"{p}.cart.paid", "c1")  # recorded, not fanned out
        worker.start()
        failed.append(await send(client, config, f"{p}.payment.failed", "c1"))  # after both

        async def three() -> bool:
            return len({line["pattern"] for line in lines(name) if line["key"] == "c1"}) == 3

        await until(three, 40)
        expected = {
            seq_c0: ("seq", c0),
            derived_event_id(name, "seq", "c1", [created, paid]): ("seq", [created, paid]),
            derived_event_id(name, "cnt", "c1", failed): ("cnt", failed),
            derived_event_id(name, "abs", "c1", [placed]): ("abs", [placed]),
        }
        for derived, (pattern, _) in expected.items():
            key = "c0" if derived == seq_c0 else "c1"
            topic = f"{p}.derived.{pattern}"
            assert await delivered(client, config, queue, topic, key, derived) == "completed"
        for pattern, key in (("seq", "c0"), ("seq", "c1"), ("cnt", "c1"), ("abs", "c1")):
            assert await result(client, name, pattern, key) == 1, (pattern, key)
        abs_c2 = client.get_workflow_handle(short_id(pattern_workflow_id(name, "abs", "c2")))
        assert await abs_c2.result() == 0  # shipped in time: closed quietly
        letters = [letter async for letter in list_letters(client, include_decided=True)]
        assert letters == [], [(x.reason, x.error) for x in letters]
    finally:
        worker.kill()
        server.stop()
    # Each derived event reached its subscriber once, with the events it matched.
    seen = Counter(line["parent_event"] for line in lines(name))
    assert seen == Counter(list(expected)), seen
    got = {line["parent_event"]: (line["pattern"], line["events"]) for line in lines(name)}
    assert got == expected
