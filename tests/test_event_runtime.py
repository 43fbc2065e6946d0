"""The event runtime against a real dev server: sessions (order, priority, context), [hooks],
[error_routing], deadlines, and what becomes a dead letter."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agentflow.client.runner import Runner
from agentflow.client.sessions import EmitHandle, session_view
from agentflow.config import FlowConfig
from agentflow.errors import ConfigError
from agentflow.models.session import SessionView
from agentflow.names import session_workflow_id
from agentflow.worker.serve import build_worker
from tests.conftest import REPO, flow_config, running_worker
from tests.runtime_agents import CALLS

STEP = "tests.runtime_agents:step"
HOOKS = "tests.runtime_agents"


def _flow(agents: tuple[str, ...] = ("a", "b"), tables: dict[str, Any] | None = None,
          fixer: str | None = None, **agent_options: Any) -> FlowConfig:  # fmt: skip
    """A sequential flow of ``agents`` (tests.runtime_agents:step); ``fixer`` adds an agent
    outside the sequence (an [error_routing] handler) with that handler."""
    tables_of_agents = {name: {"handler": STEP, **agent_options} for name in agents}
    if fixer:
        tables_of_agents["fixer"] = {"handler": f"{HOOKS}:{fixer}"}
    return flow_config(
        "sequential", tables_of_agents, sequential_agents=list(agents), retry_attempts=1,
        tables=tables,
    )  # fmt: skip


def _session() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


async def _emit_all(runner: Runner, session: str, *datas: dict[str, Any], **options: Any
                    ) -> list[EmitHandle]:  # fmt: skip
    return [await runner.emit(data, session_id=session, **options) for data in datas]


async def test_events_of_a_session_run_in_order_and_share_its_context(client: Client) -> None:
    config, session = _flow(), _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        handles = await _emit_all(runner, session, *({"n": n} for n in range(4)))
        results = [await handle.result() for handle in handles]
        view = await session_view(client, config.name, session)
    assert [r.state.context["seen"] for r in results] == [
        [0, 0], [0, 0, 1, 1], [0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2, 3, 3]
    ]  # fmt: skip
    assert CALLS[session] == [f"{agent}:{n}" for n in range(4) for agent in "ab"]
    assert (view.counts.emitted, view.counts.completed, view.queued) == (4, 4, [])


async def test_queued_events_run_by_priority_then_arrival(client: Client) -> None:
    config, session = _flow(("a",)), _session()
    queue = f"test-{uuid.uuid4().hex[:10]}"
    runner = Runner(config, client, queue)
    # No worker polls the queue yet: the events wait, durably recorded, until one starts.
    for n, priority in enumerate(["low", "normal", "critical", "high", "critical", "low"]):
        await runner.emit({"n": n}, session_id=session, priority=priority)
    async with build_worker(client, [(config, REPO)], task_queue=queue):
        last = await runner.emit({"n": 6}, session_id=session, priority="low", wait=True)
        await last.result()
    assert CALLS[session] == ["a:2", "a:4", "a:3", "a:1", "a:0", "a:5", "a:6"]


async def test_emitting_the_same_event_id_twice_processes_it_once(client: Client) -> None:
    config, session = _flow(("a",)), _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        first = await runner.emit({"n": 1}, session_id=session, event_id="order-1", wait=True)
        again = await runner.emit({"n": 2}, session_id=session, event_id="order-1", wait=True)
        assert (await first.outcome()).status == "completed"
        assert (await again.outcome()).status == "completed"
        view = await session_view(client, config.name, session)
    assert CALLS[session] == ["a:1"]
    assert (view.counts.emitted, view.counts.duplicates) == (1, 1)


async def test_hooks_run_at_every_point_in_order(client: Client) -> None:
    hooks = {
        "before_event_handling": [f"{HOOKS}:tag_event"],
        "after_event_handling": [f"{HOOKS}:tag_event"],
        "before_agent_run": [f"{HOOKS}:agent_hook"],
        "after_agent_run": [f"{HOOKS}:agent_hook"],
        "agent_error": [f"{HOOKS}:agent_hook"],
        "all": [f"{HOOKS}:every_hook"],
    }
    config, session = _flow(tables={"hooks": hooks}), _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        [handle] = await _emit_all(runner, session, {"n": 0})
        result = await handle.result()
    assert result.state.data["tagged"] == ["before_event_handling", "after_event_handling"]
    assert result.state.data["after"] == ["a", "b"]
    assert CALLS[session] == [
        "before_event_handling", "all:before_event_handling",
        "before_agent_run:a:", "all:before_agent_run", "a:0",
        "after_agent_run:a:", "all:after_agent_run",
        "before_agent_run:b:", "all:before_agent_run", "b:0",
        "after_agent_run:b:", "all:after_agent_run",
        "after_event_handling", "all:after_event_handling",
    ]  # fmt: skip


async def test_agent_hooks_add_no_server_round_trip(client: Client) -> None:
    """Agent hooks run inside the agent's own activity: the same activities are scheduled."""
    hooks = {
        "before_agent_run": [f"{HOOKS}:agent_hook"],
        "after_agent_run": [f"{HOOKS}:agent_hook"],
    }
    plain, hooked = _flow(), _flow(tables={"hooks": hooks})
    scheduled = []
    for config in (plain, hooked):
        async with running_worker(client, config) as queue:
            handle = await Runner(config, client, queue).start({"n": 0})
            await handle.result()
            history = await handle.handle.fetch_history()
        scheduled.append(sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                             for e in history.events))  # fmt: skip
    assert scheduled == [2, 2]


@pytest.mark.parametrize(
    ("point", "reject"),
    [
        ("before_event_handling", "before_event_handling"),
        ("before_agent_run", "before_agent_run:b"),
    ],
)
async def test_a_hook_that_raises_fatal_error_dead_letters_the_event(
    client: Client, point: str, reject: str
) -> None:
    callback = "tag_event" if point.endswith("event_handling") else "agent_hook"
    config = _flow(tables={"hooks": {point: [f"{HOOKS}:{callback}"]},
                           "error_routing": {"error_handler": "fixer"}},
                   fixer="error_handler")  # fmt: skip
    session = _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        [handle] = await _emit_all(runner, session, {"n": 0, "reject": reject})
        outcome = await handle.outcome()
    assert (outcome.status, outcome.reason) == ("dead_lettered", "hook rejected")
    assert "rejected on purpose" in (outcome.error or "") or "agent hook says no" in (
        outcome.error or ""
    )
    assert not any(call.startswith("handler:") for call in CALLS[session])  # no error routing


@pytest.mark.parametrize(
    ("data", "kind"),
    [({"fail": "b"}, "fatal"), ({"bad_output": "b"}, "validation"),
     ({"fail_retryable": "b"}, "default"), ({"sleep": 3}, "timeout")],
)  # fmt: skip
async def test_a_failed_agent_goes_to_its_category_handler(
    client: Client, data: dict[str, Any], kind: str
) -> None:
    routing = {"category_handlers": {"fatal": "fixer", "validation": "fixer", "timeout": "fixer",
                                     "default": "fixer"}}  # fmt: skip
    config = _flow(tables={"error_routing": routing}, fixer="error_handler", timeout_seconds=1)
    session = _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        [handle] = await _emit_all(runner, session, {"n": 0, **data})
        result = await handle.result()
    assert (result.status, result.handled_by, result.state.data["handled"]) == (
        "handled", "fixer", True
    )  # fmt: skip
    failed_agent = "a" if kind == "timeout" else "b"
    assert f"handler:{failed_agent}:{kind}" in CALLS[session]
    handler_input = result.results[-1]
    assert handler_input.agent == "fixer" and result.error


async def test_the_handler_gets_the_original_event_and_the_failure(client: Client) -> None:
    config = _flow(tables={"error_routing": {"error_handler": "fixer"}}, fixer="error_handler")
    async with running_worker(client, config) as queue:
        handle = await Runner(config, client, queue).start({"n": 5, "fail": "b"})
        result = await handle.result()
        history = await handle.handle.fetch_history()
    inputs = [e for e in history.events
              if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]  # fmt: skip
    [request] = await client.data_converter.decode(
        inputs[-1].activity_task_scheduled_event_attributes.input.payloads
    )
    sent = request["state"]["data"]
    assert sent["original_event"]["data"] == {"n": 5, "fail": "b"}
    assert (sent["failed_agent"], sent["error_type"], sent["exception_type"], sent["attempts"]) == (
        "b", "fatal", "FatalError", 1
    )  # fmt: skip
    assert "b was told to fail" in sent["error_message"]
    assert result.status == "handled"  # `agentflow run` routes errors too


async def test_without_a_handler_or_when_it_fails_the_event_is_dead_lettered(
    client: Client,
) -> None:
    plain = _flow()
    failing = _flow(tables={"error_routing": {"error_handler": "fixer"}},
                    fixer="failing_handler")  # fmt: skip
    for config, expected in ((plain, "b was told to fail"), (failing, "cannot cope either")):
        session = _session()
        async with running_worker(client, config) as queue:
            [handle] = await _emit_all(Runner(config, client, queue), session, {"fail": "b"})
            outcome = await handle.outcome()
            view = await session_view(client, config.name, session)
        assert (outcome.status, outcome.reason) == ("dead_lettered", "agent failed")
        assert expected in (outcome.error or "")
        assert (view.counts.emitted, view.counts.dead_lettered, view.context) == (1, 1, {})


async def test_an_event_not_started_by_its_deadline_is_dead_lettered(client: Client) -> None:
    config, session = _flow(("a",)), _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        slow = await runner.emit({"n": 0, "sleep": 1.5}, session_id=session)
        late = await runner.emit({"n": 1}, session_id=session, within=timedelta(seconds=0.5))
        assert (await slow.outcome()).status == "completed"
        outcome = await late.outcome()
    assert (outcome.status, outcome.reason) == ("dead_lettered", "deadline passed")
    assert CALLS[session] == ["a:0"]


async def test_a_started_event_gets_only_the_time_left(client: Client) -> None:
    config, session = _flow(("a",), timeout_seconds=30), _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        deadline = datetime.now(timezone.utc) + timedelta(seconds=1)
        [handle] = await _emit_all(runner, session, {"n": 0, "sleep": 3}, deadline=deadline)
        outcome = await handle.outcome()
    assert (outcome.status, outcome.reason) == ("dead_lettered", "agent failed")
    assert "the event's deadline" in (outcome.error or "")
    assert "passed while 'a' ran" in (outcome.error or "")


async def test_an_unreadable_event_is_dead_lettered_not_dropped(client: Client) -> None:
    config, session = _flow(("a",)), _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        first = await runner.emit({"n": 0}, session_id=session, wait=True)
        await first.result()
        handle = client.get_workflow_handle(session_workflow_id(config.name, session))
        await handle.signal("emit", {"not": "an event"})
        later = await runner.emit({"n": 1}, session_id=session, wait=True)
        await later.result()
        view: SessionView = await session_view(client, config.name, session)
    assert (view.counts.emitted, view.counts.completed, view.counts.dead_lettered) == (3, 2, 1)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"hooks": {"before_run": ["x:y"]}}, "hooks.before_run: unknown key (did you mean"),
        ({"hooks": {"all": ["no_colon"]}}, "must look like 'package.module:function'"),
        ({"hooks": {"all": ["tests.nothing_here:f"]}}, "hooks.all[0]: cannot import module"),
        ({"error_routing": {"error_handler": "a", "category_handlers": {"fatal": "ghost"},
                            "enabled": "yes"}}, "error_routing.enabled: Input should be"),
        ({"error_routing": {"category_handlers": {"network": "a"}}}, "unknown error kind "
                                                                     "'network'"),
        ({"sessions": {"dedupe_window": 5, "max_queued_events": 10}}, "must be at least"),
    ],
)  # fmt: skip
def test_bad_event_runtime_config_is_one_clear_error(tables: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _flow(("a",), tables=tables)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"priority": "urgent"}, "--priority: unknown 'urgent'"),
        ({"session_id": "x" * 300}, "--session: 300 bytes; at most 256"),
        ({"event_id": " "}, "--event-id: must not be empty"),
        ({"deadline": datetime(2030, 1, 1)}, "--deadline: give a time zone"),
        ({"within": timedelta(seconds=-1)}, "--within: must be a positive duration"),
        ({"target": "nobody"}, "--target: no enabled agent 'nobody'"),
    ],
)
async def test_bad_emit_options_are_one_clear_error(
    client: Client, options: dict[str, Any], message: str
) -> None:
    runner = Runner(_flow(("a",)), client, "unused")
    with pytest.raises(ConfigError) as raised:
        await runner.emit({}, **options)
    assert message in str(raised.value)


async def test_a_long_loop_event_continues_the_session_as_new_mid_event(client: Client) -> None:
    """A loop event of 600 iterations outlasts one run (500 iterations): the session continues
    as new carrying the loop's progress, and the event finishes in the next run."""
    config = flow_config("loop", {"t": f"{HOOKS}:tick"}, loop_agent="t", max_iterations=600,
                         local_agents=True)  # fmt: skip
    session = _session()
    async with running_worker(client, config) as queue:
        runner = Runner(config, client, queue)
        first = await runner.emit({}, session_id=session, wait=True)
        second = await runner.emit({}, session_id=session, wait=True)
        results = [await first.result(), await second.result()]
        view = await session_view(client, config.name, session)
    assert [r.iterations for r in results] == [600, 600]
    assert [r.state.context["ticks"] for r in results] == [600, 1200]
    assert view.runs >= 3 and view.counts.completed == 2


async def test_critical_events_are_dispatched_before_low_ones_of_other_sessions(
    client: Client,
) -> None:
    """On a busy task queue (one activity slot, a backlog of first agents of 12 sessions), the
    critical sessions' agents are dispatched first: Temporal's task priority at work."""
    config = _flow(("a",))
    queue = f"test-{uuid.uuid4().hex[:10]}"
    runner = Runner(config, client, queue)
    sessions = {f"{priority}-{n}-{uuid.uuid4().hex[:6]}": priority
                for n in range(6) for priority in ("low", "critical")}  # fmt: skip
    handles = [await runner.emit({"n": 0, "sleep": 0.2}, session_id=session, priority=priority)
               for session, priority in sessions.items()]  # fmt: skip
    async with build_worker(client, [(config, REPO)], task_queue=queue,
                            max_concurrent_activities=1):  # fmt: skip
        for handle in handles:
            await handle.result()
        order = [await _first_call_time(client, config, session) for session in sessions]
    dispatched = [sessions[s] for _, s in sorted(zip(order, sessions, strict=True))]
    # The first agent may start before the backlog has formed; after it, strictly by priority.
    assert dispatched[1:] == sorted(dispatched[1:], key=lambda p: p != "critical")


async def _first_call_time(client: Client, config: FlowConfig, session: str) -> datetime:
    handle = client.get_workflow_handle(session_workflow_id(config.name, session))
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            return event.event_time.ToDatetime(tzinfo=timezone.utc)
    raise AssertionError(f"session {session} ran no agent")
