"""A one-process runner program (tests/test_runner_process.py kills it): a route flow whose
agents are registered in code; ``work`` emits a child event to ``child`` for each event.

``python tests/runner_program.py FLOW_FILE LOG SESSION N`` emits events e-0 .. e-(N-1) into
SESSION (none when N is 0), then serves until SIGTERM. Every agent call appends
``agent event-id`` to LOG.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import agentflow
from agentflow import Event, State, emit

flow, log, session, count = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
runner = agentflow.Runner.from_config(flow)


def _record(agent: str, event: Event) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"{agent} {event.id}\n")


@runner.agent("work")
def work(event: Event, state: State) -> dict[str, object]:
    child = emit("child", {"of": event.id})
    time.sleep(0.03)  # long enough for the test to kill the process mid-stream
    _record("work", event)
    return {"child": child.id}


@runner.agent("child")
def child(event: Event, state: State) -> None:
    _record("child", event)


async def main() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with runner:
        for index in range(count):
            event = agentflow.new_event("work", {"n": index}, {"session_id": session})
            await runner.emit(event.model_copy(update={"id": f"e-{index}"}))
        print("emitted", flush=True)
        await stop.wait()


asyncio.run(main())
