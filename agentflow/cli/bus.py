"""The CLI's bus commands: ``publish`` (``Runner.publish``), ``register`` (``register``) and
``topics`` (the library is agentflow/client/bus.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from temporalio.client import Client

from agentflow import names
from agentflow.cli._common import (
    EXIT_OK,
    agents_flag,
    connected,
    connection_flag,
    flow_runner,
    link,
    print_json,
    read_input,
)
from agentflow.client import bus as bus_client
from agentflow.client import visibility
from agentflow.client.connection import connect_flow
from agentflow.config import DEFAULT_CONFIG_FILE
from agentflow.models.bus import Registration, Subscriber, subscribers_of
from agentflow.models.session import SessionCounts
from agentflow.names import BUS_FLOW, BUS_TASK_QUEUE, session_workflow_id
from agentflow.worker.serve import load_with_code

# A live worker answers a query in milliseconds; longer means none is answering.
QUERY_TIMEOUT_SECONDS = 5.0
# Session queries in flight at once for `topics --counts`.
COUNT_QUERIES = 32


def add_commands(commands: Any) -> None:
    cmd = commands.add_parser(
        "publish", help="publish an event to a topic; returns once Temporal has recorded it"
    )
    cmd.add_argument("topic", help="a concrete topic, e.g. user.query")
    cmd.add_argument(
        "--config", default=DEFAULT_CONFIG_FILE,
        help="its [bus] publishes says what this client may publish; [temporal] where",
    )  # fmt: skip
    cmd.add_argument("--input", default="{}", help="JSON object, @file.json, or @- for stdin")
    cmd.add_argument("--session", help="deliver into this session of every subscriber")
    cmd.add_argument("--key", help="ordered subscribers get a key's events in publish order")
    cmd.add_argument("--event-id", help="event id; a repeated id is delivered once")
    cmd.add_argument("--json", action="store_true", help="print exactly one JSON object")
    cmd.set_defaults(func=_publish)

    cmd = commands.add_parser(
        "register",
        help="record flows' bus subscriptions (a deploy step): events published from then on "
        "reach them, and wait in Temporal until a worker of the flow polls",
    )  # fmt: skip
    cmd.add_argument(
        "--config", action="append", metavar="FILE",
        help=f"a flow file, loaded as `agentflow worker` loads it; repeat for several "
        f"(default: {DEFAULT_CONFIG_FILE}); the first one's [temporal] table says where",
    )  # fmt: skip
    cmd.add_argument(
        "--task-queue",
        help="where deliveries go, as `agentflow worker --task-queue` (default: each flow's "
        "[temporal] task_queue, else its own queue agentflow:NAME)",
    )  # fmt: skip
    agents_flag(cmd)
    cmd.set_defaults(func=_register)

    cmd = commands.add_parser("topics", help="topics, their subscribers and where each is served")
    cmd.add_argument(
        "--counts", action="store_true",
        help="also each subscriber's deliveries: done, dead-lettered, pending",
    )  # fmt: skip
    cmd.add_argument("--forget", metavar="FLOW", help="remove a retired flow's subscriptions")
    cmd.add_argument("--json", action="store_true", help="one JSON object per subscriber")
    connection_flag(cmd)
    cmd.set_defaults(func=lambda args: connected(args, _topics))


def _publish(args: argparse.Namespace) -> int:
    # Bad input (the file, --input, the topic and its [bus] publishes, ids): exit 2 before
    # connecting; Runner.publish checks all of it first.
    data = read_input(args.input)
    runner = flow_runner(args, check_handlers=False)

    async def main() -> int:
        handle = await runner.publish(args.topic, data, key=args.key, event_id=args.event_id,
                                      session_id=args.session)  # fmt: skip
        client = await runner.client()
        if not await visibility.has_workers(client, BUS_TASK_QUEUE):
            print("agentflow: warning: no agentflow worker runs; the event waits on the bus "
                  "until one starts (agentflow worker --config ...)", file=sys.stderr)  # fmt: skip
        if args.json:
            print_json({"event_id": handle.event_id, "topic": args.topic,
                        "shard": handle.workflow_id, "status": "published"})  # fmt: skip
        else:
            print(f"published {handle.event_id} to {args.topic}\n"
                  f"  trace: agentflow trace --event {handle.event_id}\n"
                  f"  {link(client, args, handle.workflow_id)}")  # fmt: skip
        return EXIT_OK

    return asyncio.run(main())


def _register(args: argparse.Namespace) -> int:
    # Bad files: exit 2 before connecting.
    paths = args.config or [DEFAULT_CONFIG_FILE]
    configs = [config for config, _ in load_with_code(paths, args.agents)]  # as the worker

    async def main() -> int:
        client = await connect_flow(configs[0])
        registered = set(await bus_client.register(client, configs, args.task_queue))
        for config in configs:
            if config.name not in registered:
                print(f"flow {config.name!r} subscribes to nothing: nothing to register")
                continue
            queue = args.task_queue or config.task_queue
            waiting = "" if await visibility.has_workers(client, queue) else (
                " (no worker polls it yet: deliveries wait there until one starts)"
            )  # fmt: skip
            print(f"registered flow {config.name!r}: its deliveries go to task queue "
                  f"{queue!r}{waiting}")  # fmt: skip
            for sub in subscribers_of(config, queue):
                print(f"  {', '.join(sub.patterns)}  →  {sub.name}")
        return EXIT_OK

    return asyncio.run(main())


async def _topics(client: Client, args: argparse.Namespace) -> int:
    if args.forget:
        await bus_client.forget(client, args.forget)
        print(f"forgot {args.forget}: its subscriptions get no new deliveries")
        return EXIT_OK
    found = await bus_client.registrations(client)
    if not found:
        if not args.json:  # JSON Lines of no subscriber: nothing
            print("no subscriptions: none registered yet (agentflow register --config F, or "
                  "a worker of a flow with subscribers, registers them)")  # fmt: skip
        return EXIT_OK
    listed = [(found[flow], sub) for flow in sorted(found)
              for sub in subscribers_of(found[flow].config, found[flow].task_queue)]  # fmt: skip
    queues = {entry.task_queue for entry, _ in listed}
    serving = {queue: await visibility.has_workers(client, queue) for queue in queues}
    counts: list[SessionCounts | None] = [None] * len(listed)
    if args.counts:  # all at once: each session whose worker is gone costs a whole timeout
        gate = asyncio.Semaphore(COUNT_QUERIES)
        counts = list(await asyncio.gather(*(subscriber_counts(client, sub, gate)
                                             for _, sub in listed)))  # fmt: skip
    for (entry, sub), sub_counts in zip(listed, counts, strict=True):
        _print_subscriber(entry, sub, serving[entry.task_queue], sub_counts, args.json)
    if not args.json:
        print(f"\nbus shards: {link(client, args, session_workflow_id(BUS_FLOW, 'shard-0'))}")
    return EXIT_OK


def _print_subscriber(
    entry: Registration, sub: Subscriber, serving: bool, counts: SessionCounts | None,
    as_json: bool,
) -> None:  # fmt: skip
    if as_json:
        print_json({"subscriber": sub.name, "flow": sub.flow, "agent": sub.agent,
                     "topics": sub.patterns, "ordered": sub.ordered,
                     "task_queue": sub.task_queue, "worker": entry.worker,
                     "registered_at": entry.registered_at.isoformat()
                     if entry.registered_at else None, "serving": serving,
                     "counts": counts.model_dump() if counts else None})  # fmt: skip
        return
    state = "served" if serving else "no worker polls now: deliveries wait"
    order = ", ordered" if sub.ordered else ""
    print(f"{', '.join(sub.patterns)}  →  {sub.name}{order}  "
          f"[task queue {sub.task_queue}: {state}; registered by {entry.worker}]")  # fmt: skip
    if counts is not None:
        print(f"    {counts.emitted} delivered to it: {counts.processed} done, "
              f"{counts.dead_lettered} dead-lettered, {_pending(counts)} pending")  # fmt: skip


def _pending(counts: SessionCounts) -> int:
    return counts.emitted - counts.processed - counts.dead_lettered


async def subscriber_counts(
    client: Client, sub: Subscriber, gate: asyncio.Semaphore
) -> SessionCounts:
    """The sums over the subscriber's delivery sessions (``bus:AGENT:...``) that answer."""
    query = visibility.session_query(sub.flow, "running")
    prefix = f"bus:{sub.agent}:"
    ids = [
        execution.id
        async for execution in client.list_workflows(query)
        if (execution.typed_search_attributes.get(names.SESSION) or "").startswith(prefix)
    ]

    async def one(workflow_id: str) -> SessionCounts | None:
        async with gate:
            return await bus_client.session_counts(client, workflow_id, QUERY_TIMEOUT_SECONDS)

    total = SessionCounts()
    for view in await asyncio.gather(*(one(workflow_id) for workflow_id in ids)):
        if view is not None:
            total += view
    return total
