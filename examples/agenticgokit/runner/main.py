"""AgenticGoKit's message-passing runner in Python: agents and callbacks registered in code,
events built with ``new_event(target, data, metadata)``, callbacks that emit follow-up
events (a chain to the next agent, a retry after a failure), one session, and priorities.

Run it with ``python examples/agenticgokit/runner/main.py``. With no Temporal server
configured and none on localhost:7233, the runner starts one (its data in ``.agentflow/``),
serves the flow in this process, and stops both at the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import agentflow
from agentflow import CallbackArgs, Event, EventDeadLetteredError, State, emit, new_event

runner = agentflow.Runner.from_config(Path(__file__).with_name("agentflow.toml"))
SESSION = "demo-session"


@runner.agent("processor")
def processor(event: Event, state: State) -> State:
    out = state.clone()
    out.data |= {"processed": True, "processed_at": int(time.time())}
    out.meta["next"] = "analyzer"  # the workflow-coordinator callback chains on this
    return out


@runner.agent("analyzer")
def analyzer(event: Event, state: State) -> dict[str, object]:
    return {"analyzed": True, "analysis_score": 0.95}


@runner.agent("validator")
def validator(event: Event, state: State) -> dict[str, object]:
    if event.metadata.get("retry") != "true":
        raise ConnectionError("upstream reset the connection (temporary)")
    return {"validated": True, "retry_of": event.metadata["original_event_id"]}


@runner.callback("before_event_handling", "event-logger")
def event_logger(args: CallbackArgs) -> None:
    print(f"event {args.event.id[:8]} to {args.event.target_agent} "
          f"(session {args.event.session_id}, priority {args.event.priority})")  # fmt: skip


@runner.callback("before_agent_run", "agent-monitor")
def agent_monitor(args: CallbackArgs) -> State:
    out = args.state.clone()
    out.meta["executing_agent"] = args.agent
    return out


@runner.callback("after_agent_run", "workflow-coordinator")
def workflow_coordinator(args: CallbackArgs) -> None:
    """Chain: an agent that names a next one gets a new event emitted to it (once, even if
    this callback's activity is retried: the event's id comes from the parent's)."""
    result = args.agent_result
    if args.error is None and result is not None and (nxt := args.state.meta.get("next")):
        emit(new_event(nxt, dict(args.state.data), {"session_id": args.event.session_id}))


@runner.callback("agent_error", "error-recovery")
def error_recovery(args: CallbackArgs) -> None:
    if "temporary" in (args.error or "") and args.event.metadata.get("retry") != "true":
        emit(new_event(args.agent, dict(args.event.data), {
            "retry": "true", "original_event_id": args.event.id,
            "session_id": args.event.session_id, "route": args.agent,
        }))  # fmt: skip


async def main() -> None:
    async with runner:  # the embedded dev server if none is configured, and a worker
        first = new_event("processor", {"data": "sample dataset", "format": "csv"},
                          {"session_id": SESSION, "route": "processor"})  # fmt: skip
        outcome = await (await runner.emit(first, wait=True)).result()
        print(f"processor: {outcome.status}, processed = {outcome.state.data['processed']}")

        failing = new_event("validator", {"record": 7}, {"session_id": SESSION})
        try:
            await (await runner.emit(failing, wait=True)).result()
        except EventDeadLetteredError as err:
            print(f"validator failed for good: {err.outcome.error}")

        # Three events at once: the session takes the critical one first among those waiting.
        for priority in ("low", "high", "critical"):
            await runner.emit(new_event("analyzer", {"batch": priority},
                                        {"session_id": SESSION, "priority": priority}))  # fmt: skip
        # A session runs its events one at a time, by priority, then in order of arrival: when
        # this low one is done, so is every event emitted before it, chained and retried
        # ones included.
        last = new_event("analyzer", {"final": True}, {"session_id": SESSION, "priority": "low"})
        await (await runner.emit(last, wait=True)).result()
        counts = (await runner.session(SESSION)).counts
        print(f"session {SESSION}: emitted {counts.emitted}, completed {counts.completed}, "
              f"dead-lettered {counts.dead_lettered}")  # fmt: skip


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("agentflow.runner").setLevel(logging.INFO)  # which server, which queue
    logging.getLogger("temporalio").setLevel(logging.ERROR)  # a failed attempt's traceback
    asyncio.run(main())
