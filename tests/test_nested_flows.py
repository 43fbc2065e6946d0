"""Flows inside flows: an agent that is a whole flow runs as a child workflow (issue 11)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from agentflow.client.runner import Runner
from agentflow.config import load_config
from agentflow.errors import ConfigError
from agentflow.inspect.graph.flow import config_graph, run_graph, trace_graph
from agentflow.inspect.trace.read import format_table, trace
from tests._worker_process import WorkerProcess, wait_for_line
from tests.conftest import cli, running_worker
from tests.test_graph import boxes, parse

PARENT = """
[agent_flow]
name = "parent"
[orchestration]
mode = "sequential"
sequential_agents = ["a", "sub", "b"]
retry_attempts = 0
[orchestration.retry]
initial_interval_seconds = 0.1
[agents.a]
handler = "tests.agents:append"
[agents.sub]
flow = "flows/child.toml"
[agents.b]
handler = "tests.agents:append"
[agents.fixer]
handler = "tests.agents:append"
[error_routing]
error_handler = "fixer"
"""

CHILD = """
[agent_flow]
name = "child"
[orchestration]
mode = "sequential"
sequential_agents = {agents}
retry_attempts = 0
[agents.c1]
handler = "tests.{c1}"
[agents.c2]
handler = "tests.{c2}"
timeout_seconds = 5   # heartbeat timeout too: a killed worker's attempt is retried after 5 s
retry_attempts = 1
"""


def _files(
    tmp_path: Path,
    agents: str = '["c1", "c2"]',
    c1: str = "agents:append",
    c2: str = "agents:append",
) -> Path:
    (tmp_path / "flows").mkdir(exist_ok=True)
    child = CHILD.format(agents=agents, c1=c1, c2=c2)
    (tmp_path / "flows" / "child.toml").write_text(child)
    (tmp_path / "parent.toml").write_text(PARENT)
    return tmp_path / "parent.toml"


def _toml(path: Path, name: str, flow: str | None, depth: int | None = None) -> None:
    agent = f'flow = "{flow}"' if flow else 'handler = "tests.agents:noop"'
    limit = f"max_flow_depth = {depth}\n" if depth else ""
    path.write_text(f'[agent_flow]\nname = "{name}"\n[orchestration]\nmode = "sequential"\n'
                    f'sequential_agents = ["x"]\n{limit}[agents.x]\n{agent}\n')  # fmt: skip


async def test_cycles_depth_and_bad_flow_agents_fail_at_load_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _toml(tmp_path / "a.toml", "a", "b.toml")
    _toml(tmp_path / "b.toml", "b", "sub/c.toml")
    (tmp_path / "sub").mkdir()
    _toml(tmp_path / "sub" / "c.toml", "c", "../a.toml")  # relative to sub/: back to a.toml
    code, _, err = await cli(capsys, "validate", "--config", str(tmp_path / "a.toml"))
    assert code == 2 and "Traceback" not in err
    assert "agents.x.flow: flow files form a cycle: " in err
    assert err.count("a.toml") == 2 and "b.toml → " in err and "c.toml → " in err

    _toml(tmp_path / "sub" / "c.toml", "c", None)  # no cycle: a → b → c, two levels deep
    assert load_config(tmp_path / "a.toml").nested["x"].nested["x"].name == "c"
    _toml(tmp_path / "a.toml", "a", "b.toml", depth=1)
    with pytest.raises(ConfigError, match=r"flows nest 2 levels deep .*b\.toml → .*c\.toml.*"
                       r"max_flow_depth = 1"):  # fmt: skip
        load_config(tmp_path / "a.toml")

    _toml(tmp_path / "a.toml", "a", "missing.toml")
    with pytest.raises(ConfigError, match=r"a\.toml: agents\.x\.flow: flow file .*missing\.toml"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "a.toml").write_text((tmp_path / "b.toml").read_text() + 'handler = "m:f"\n')
    with pytest.raises(ConfigError, match=r"agents\.x: flow cannot be combined with handler"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "a.toml").write_text(
        (tmp_path / "b.toml").read_text() + '[nested.x.orchestration]\nmode = "loop"\n'
    )
    with pytest.raises(ConfigError, match="nested: unknown key"):
        load_config(tmp_path / "a.toml")


async def test_child_flow_runs_pinned_traced_and_routed(client: Client, tmp_path: Path) -> None:
    path = _files(tmp_path)
    config = load_config(path)
    # Editing the child file changes new runs only: the loaded config carries the old one.
    _files(tmp_path, agents='["c2"]')
    edited = load_config(path)
    _files(tmp_path, c2="agents:fatal")
    failing = load_config(path)
    async with running_worker(client, config, failing) as queue:
        handle = await Runner(config, client, queue).start({})
        result = await handle.result()
        second = await Runner(edited, client, queue).run({})
        handled_run = await Runner(failing, client, queue).start({})
        handled = await handled_run.result()
        entries = await trace(client, handle.workflow_id)
        handled_entries = await trace(client, handled_run.workflow_id)

    assert result.state.data["trail"] == ["a", "c1", "c2", "b"]
    assert [r.agent for r in result.results] == ["a", "sub", "b"]
    assert result.results[1].changed_keys == ["trail"]
    assert second.state.data["trail"] == ["a", "c2", "b"]
    # The child's failure is the agent's: [error_routing] takes it like any agent's.
    assert handled.status == "handled" and handled.handled_by == "fixer"
    failed = handled.results[1]
    assert (failed.agent, failed.status, failed.error_type) == ("sub", "failed", "FatalError")
    assert "flow 'child' (sequential) failed: agent 'c2'" in (failed.error or "")

    started = next(e for e in entries if e.agent == "sub" and e.action == "started")
    child = client.get_workflow_handle(started.child_workflow_id)
    described = await child.describe()
    assert started.child_workflow_id == f"{handle.workflow_id}/2-sub"
    assert described.workflow_type == "SequentialFlow" and described.parent_id == handle.workflow_id
    nested = [(e.depth, e.agent, e.action) for e in entries if e.depth]
    assert (1, "c1", "completed") in nested and (1, "c2", "completed") in nested
    index = entries.index(started)
    assert all(e.depth == 1 for e in entries[index + 1 : index + 1 + len(nested)])
    assert any(e.agent == "sub" and e.action == "completed" for e in entries)
    assert "    c1" in format_table(entries)  # the child's steps, indented under the agent
    chart = config_graph(config)
    assert 'subgraph n_sub ["sub<br/>flow child (sequential)"]' in chart
    assert "n_sub_c1 --> n_sub_c2" in chart and "n_a --> n_sub" in chart
    # The run's graph: the flow agent's step is a subgraph of the child run's own steps.
    run_chart = run_graph(entries)
    assert boxes(run_chart) == {"sub ✓": ["c1 ✓", "c2 ✓"]}
    assert parse(run_chart)[1] == [
        ("parent (sequential)", "a ✓", ""), ("c1 ✓", "c2 ✓", ""), ("a ✓", "sub ✓", ""),
        ("sub ✓", "b ✓", ""), ("b ✓", "completed", ""),
    ]  # fmt: skip
    assert 'subgraph n_step2 ["sub ✓<br/>flow child (sequential)"]' in run_chart
    handled_chart = trace_graph(handled_entries)
    assert boxes(handled_chart) == {"sub ✗ failed": ["c1 ✓", "c2 ✗ failed"]}
    assert ("sub ✗ failed", "fixer ✓", "") in parse(handled_chart)[1]


async def test_cancelling_the_parent_cancels_the_child(client: Client, tmp_path: Path) -> None:
    config = load_config(_files(tmp_path, c2="nested_agents:wait_until_cancelled"))
    started = tmp_path / "started.log"
    async with running_worker(client, config) as queue:
        handle = await Runner(config, client, queue).start({"started_file": str(started)})
        await wait_for_line(started, "c2")
        await handle.handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.handle.result(), timeout=60)
        child = await client.get_workflow_handle(f"{handle.workflow_id}/2-sub").describe()
        chart = run_graph(await trace(client, handle.workflow_id))
    assert isinstance(failure.value.cause, CancelledError)
    assert boxes(chart) == {"sub ⊘ canceled": ["c1 ✓"]}  # c2's cancelled call has no outcome
    assert child.status == WorkflowExecutionStatus.CANCELED


async def test_child_flow_survives_a_sigkilled_worker(client: Client, tmp_path: Path) -> None:
    path = _files(tmp_path, c1="agents:record", c2="agents:record")
    config = load_config(path)
    log, queue = tmp_path / "executions.log", f"nested-{uuid.uuid4().hex[:8]}"
    address, worker_log = client.service_client.config.target_host, tmp_path / "worker.log"
    first = WorkerProcess(path, queue, address, worker_log).start()
    try:
        handle = await Runner(config, client, queue).start(
            {"log_file": str(log), "delays": {"c2": 2.0}}
        )
        await wait_for_line(log, "c2")  # the child's c2 is running: kill the worker under it
    finally:
        first.kill()
    with WorkerProcess(path, queue, address, worker_log):
        result = await asyncio.wait_for(handle.result(), timeout=90)
    executions = log.read_text().split()
    assert result.status == "completed"
    assert result.state.data["trail"] == ["a", "c1", "c2", "b"]
    assert executions.count("c1") == 1 and executions.count("c2") == 2
