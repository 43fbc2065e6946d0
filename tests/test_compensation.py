"""Compensation (sagas): when a sequential or mixed run fails for good, its completed agents'
``compensate`` functions run in reverse order, each as a ``run_compensation`` activity; one that
fails for good is dead-lettered. Against a real dev server."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow import ConfigError, Event, FlowFailedError, FlowResult, Runner, State
from agentflow.cli._common import format_result
from agentflow.client import dead_letters
from agentflow.config import load_config, parse_config
from agentflow.config.registered import CodeRegistry
from agentflow.errors import AgentflowError
from agentflow.inspect.graph.run import run_graph
from agentflow.inspect.trace.read import trace
from agentflow.names import RUN_COMPENSATION
from tests._worker_process import WorkerProcess, wait_for_line
from tests.compensation_agents import book, undo_async
from tests.conftest import REPO, cli, flow_config, flow_runner

AGENTS = "tests.compensation_agents"


def _saga(b_undo: str = "undo", mode: str = "sequential") -> Any:
    agents = {
        "a": {"handler": f"{AGENTS}:book", "compensate": f"{AGENTS}:undo"},
        "b": {"handler": f"{AGENTS}:book", "compensate": f"{AGENTS}:{b_undo}",
              "retry_attempts": 1},
        "c": {"handler": f"{AGENTS}:fail"},
    }  # fmt: skip
    if mode == "mixed":
        return flow_config("mixed", agents, collaborative_agents=["a"],
                           sequential_agents=["b", "c"])  # fmt: skip
    return flow_config("sequential", agents, sequential_agents=["a", "b", "c"])


async def _failed(runner: Runner, ledger: Path, **options: Any) -> tuple[FlowResult, str]:
    with pytest.raises(FlowFailedError) as raised:
        await runner.run({"ledger": str(ledger)}, **options)
    return raised.value.result, str(raised.value)


def _lines(ledger: Path) -> list[str]:
    return ledger.read_text(encoding="utf-8").splitlines()


async def test_completed_agents_are_compensated_in_reverse_order_once_each(
    client: Client, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    async with flow_runner(client, _saga()) as runner:
        workflow_id = f"saga-{uuid.uuid4().hex[:8]}"
        result, message = await _failed(runner, ledger, workflow_id=workflow_id)
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        entries = await trace(client, workflow_id)
    assert _lines(ledger) == ["do a", "do b", "fail", "undo b", "undo a"]
    assert result.status == "compensated"
    assert [(c.agent, c.status, c.attempt) for c in result.compensations or []] == [
        ("b", "completed", 1), ("a", "completed", 1),
    ]  # fmt: skip
    assert [r.agent for r in result.results] == ["a", "b", "c"]
    assert "failed: FatalError: the last step cannot be done; compensated 'b', 'a'" in message
    shown = format_result(result, show_state=False)
    assert shown.startswith("flow 'test-sequential' (sequential): compensated\n"), shown
    assert [line.split("  attempt")[0] for line in shown.splitlines()[-2:]] == [
        "  ↺ compensated b", "  ↺ compensated a",
    ]  # fmt: skip
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    undo = [(s.activity_type.name, s.activity_id) for s in scheduled
            if s.activity_type.name == RUN_COMPENSATION]  # fmt: skip
    assert undo == [(RUN_COMPENSATION, "4-compensate-b"), (RUN_COMPENSATION, "5-compensate-a")]
    lines = [(e.action, e.agent) for e in entries if e.action.startswith("compensat")]
    assert lines == [("compensating", "b"), ("compensated", "b"), ("compensating", "a"),
                     ("compensated", "a")]  # fmt: skip
    chart = run_graph(entries)
    assert 'subgraph n_compensate ["compensate"]' in chart
    assert '-.->|"compensate"| n_undo1' in chart and "n_undo1 -.-> n_undo2" in chart
    assert '"b ↺ undone"' in chart and '"a ↺ undone"' in chart
    assert "n_undo2 --> n_flow_done" in chart and '"compensated"' in chart


async def test_a_compensation_that_fails_for_good_is_dead_lettered_and_the_rest_still_run(
    client: Client, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    config = _saga(b_undo="undo_broken", mode="mixed")
    async with flow_runner(client, config) as runner:
        workflow_id = f"saga-{uuid.uuid4().hex[:8]}"
        result, message = await _failed(runner, ledger, workflow_id=workflow_id)
        # b's compensation was tried twice (retry_attempts = 1), then a's ran all the same.
        assert _lines(ledger) == ["do a", "do b", "fail", "undo-broken", "undo-broken", "undo a"]
        assert result.status == "compensated"
        [broken, fine] = result.compensations or []
        assert (broken.agent, broken.status, broken.attempt) == ("b", "failed", 2)
        assert "RuntimeError: the refund service is down" in (broken.error or "")
        assert (fine.agent, fine.status) == ("a", "completed")
        assert "the compensation of 'b' failed (dead-lettered)" in message
        entries = await trace(client, workflow_id)
        [failed_line] = [e for e in entries if e.action == "compensation failed"]
        assert failed_line.agent == "b" and "refund service is down" in failed_line.detail
        assert '"b ✗ failed, dead-lettered"' in run_graph(entries)
        rows = [row async for row in dead_letters.list_letters(client, flow=config.name)]
        [row] = [row for row in rows if row.id == broken.dead_letter_id]
        assert (row.reason, row.failed_agent) == ("compensation failed", "b")
        assert "the refund service is down" in (row.error or "")
        with pytest.raises(AgentflowError, match="is a failed compensation of agent 'b', which "
                           "cannot be redriven: undo what the agent did by hand"):  # fmt: skip
            await dead_letters.redrive(client, config, row.id, "tester")
        decision = await dead_letters.purge(client, row.id, "tester")
        assert decision.outcome == "purged"


async def test_a_session_event_is_compensated_and_both_letters_are_written(
    client: Client, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    config = _saga(b_undo="undo_broken")
    session = f"s-{uuid.uuid4().hex[:6]}"
    async with flow_runner(client, config) as runner:
        handle = await runner.emit({"ledger": str(ledger)}, session_id=session, wait=True)
        outcome = await handle.outcome()
        rows = [row async for row in dead_letters.list_letters(client, session, config.name)]
    assert _lines(ledger) == ["do a", "do b", "fail", "undo-broken", "undo-broken", "undo a"]
    assert (outcome.status, outcome.reason) == ("dead_lettered", "agent failed")
    assert sorted((row.reason, row.failed_agent) for row in rows) == [
        ("agent failed", "c"), ("compensation failed", "b"),
    ]  # fmt: skip
    [event_letter] = [row for row in rows if row.reason == "agent failed"]
    record = await dead_letters.read_letter(client, event_letter.id)
    assert record.view.letter.result is not None
    assert record.view.letter.result.status == "compensated"


async def test_compensations_registered_in_code_run_sync_or_async(
    client: Client, tmp_path: Path
) -> None:
    raw = {
        "agent_flow": {"name": f"saga-{uuid.uuid4().hex[:6]}"},
        "orchestration": {"mode": "sequential", "sequential_agents": ["a", "b", "c"],
                          "retry": {"initial_interval_seconds": 0.05}},
        "agents": {"c": {"handler": f"{AGENTS}:fail"}},
    }  # fmt: skip
    runner = Runner(parse_config(raw, base_dir=REPO, check_handlers=True), client,
                    f"saga-{uuid.uuid4().hex[:8]}")  # fmt: skip
    runner.agent("a", compensate=undo_async)(book)

    def undo_b(event: Event, state: State) -> None:
        with Path(state.data["ledger"]).open("a", encoding="utf-8") as file:
            file.write(f"undo-sync {state.data['booked'][-1]}\n")

    runner.register_agent("b", book, compensate=undo_b)
    ledger = tmp_path / "ledger"
    async with runner:
        result, _ = await _failed(runner, ledger)
    assert _lines(ledger) == ["do a", "do b", "fail", "undo-sync b", "undo-async a"]
    assert result.status == "compensated"


async def test_a_run_that_fails_before_any_compensated_agent_completed_stays_failed(
    client: Client, tmp_path: Path
) -> None:
    agents = {"a": {"handler": f"{AGENTS}:fail", "compensate": f"{AGENTS}:undo"}}
    config = flow_config("sequential", agents, sequential_agents=["a"])
    ledger = tmp_path / "ledger"
    async with flow_runner(client, config) as runner:
        result, _ = await _failed(runner, ledger)
    assert result.status == "failed" and result.compensations is None
    assert _lines(ledger) == ["fail"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (f"{AGENTS}:missing",
         f"agents.a.compensate: module '{AGENTS}' has no attribute 'missing'"),
        (f"{AGENTS}:NOT_CALLABLE", f"agents.a.compensate: '{AGENTS}:NOT_CALLABLE' is not callable"),
        ("no_such_module_x:undo",
         "agents.a.compensate: cannot import module 'no_such_module_x' for compensation"),
        ("undo", "agents.a.compensate: 'undo' must look like 'package.module:function'"),
    ],
)  # fmt: skip
def test_a_compensation_that_does_not_import_is_one_clear_line(path: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        flow_config("sequential", {"a": {"handler": f"{AGENTS}:book", "compensate": path}},
                    sequential_agents=["a"])  # fmt: skip
    text = str(raised.value)
    assert message in text and "\n" not in text, text


def test_a_compensation_outside_sequential_and_mixed_mode_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        flow_config("route", {"a": {"handler": f"{AGENTS}:book", "compensate": f"{AGENTS}:undo"}})
    assert str(raised.value).endswith(
        "agents.a.compensate: compensations run in sequential and mixed mode only, and this "
        "flow is route; remove it"
    )


async def test_validate_names_the_compensation_key_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "agentflow.toml"
    flow.write_text(
        '[agent_flow]\nname = "saga"\n[orchestration]\nmode = "sequential"\n'
        'sequential_agents = ["a"]\n[agents.a]\nhandler = "tests.compensation_agents:book"\n'
        'compensate = "tests.compensation_agents:nope"\n',
        encoding="utf-8",
    )
    code, out, err = await cli(capsys, "validate", "--config", str(flow))
    assert code == 2, (out, err)
    assert err.strip().endswith(
        "agents.a.compensate: module 'tests.compensation_agents' has no attribute 'nope'"
    ), err
    assert len(err.strip().splitlines()) == 1


SAGA_FLOW = """
[agent_flow]
name = "saga-restart"

[orchestration]
mode = "sequential"
sequential_agents = ["a", "b", "c"]

[orchestration.retry]
initial_interval_seconds = 0.1

[agents.a]
handler = "tests.compensation_agents:book"
compensate = "tests.compensation_agents:undo"
[agents.b]
handler = "tests.compensation_agents:book"
compensate = "tests.compensation_agents:undo_stuck_once"
timeout_seconds = 3   # a dead worker's compensation attempt is retried after 3 s
[agents.c]
handler = "tests.compensation_agents:fail"
"""


async def test_compensation_survives_a_worker_killed_in_the_middle(
    client: Client, tmp_path: Path
) -> None:
    config_path = tmp_path / "agentflow.toml"
    config_path.write_text(SAGA_FLOW, encoding="utf-8")
    ledger, worker_log = tmp_path / "ledger", tmp_path / "worker.log"
    task_queue = f"saga-{uuid.uuid4().hex[:8]}"
    runner = Runner(load_config(config_path), client, task_queue)
    address = client.service_client.config.target_host
    first = WorkerProcess(config_path, task_queue, address, worker_log).start()
    try:
        handle = await runner.start({"ledger": str(ledger)})
        await wait_for_line(ledger, "undo stuck")  # b's compensation runs: kill its worker
    finally:
        first.kill()
    with (
        WorkerProcess(config_path, task_queue, address, worker_log),
        pytest.raises(FlowFailedError) as raised,
    ):
        await asyncio.wait_for(handle.result(), timeout=60)
    assert _lines(ledger) == ["do a", "do b", "fail", "undo stuck", "undo b", "undo a"]
    result = raised.value.result
    assert result.status == "compensated"
    assert [(c.agent, c.status, c.attempt) for c in result.compensations or []] == [
        ("b", "completed", 2), ("a", "completed", 1),
    ]  # fmt: skip


def test_a_compensation_registered_in_code_and_in_the_file_is_one_clear_error() -> None:
    registry = CodeRegistry()
    registry.register_agent("a", book, compensate=undo_async)
    config = flow_config("sequential", {"a": {"compensate": f"{AGENTS}:undo"}},
                         sequential_agents=["a"])  # fmt: skip
    with pytest.raises(ConfigError, match=r"agent 'a' has two compensations: compensate = "):
        registry.bind(config, "agentflow.toml")
    with pytest.raises(ConfigError, match=r"compensation of agent 'b': 42 is not a function"):
        registry.register_agent("b", book, compensate=42)  # type: ignore[arg-type]
