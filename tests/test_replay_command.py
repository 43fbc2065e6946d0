"""``agentflow replay``: real runs on the test server, replayed against the code as it is, and
against a changed workflow that must be reported. Each test names its flow uniquely and
filters on it (``--flow``), since the server holds every other test's runs too.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client

from agentflow.cli.main import main
from agentflow.client import visibility
from agentflow.config import FlowConfig
from agentflow.inspect.replay import ReplayReport, parse_duration, replay_runs
from agentflow.models.flow import FlowInput
from agentflow.worker.plugin import ALL_WORKFLOWS
from tests.conftest import cli, flow_config, flow_runner
from tests.flows import append_then_noop

POLLS = 100  # visibility is eventually consistent: list again until our runs show up


def _named_uniquely(config: FlowConfig) -> FlowConfig:
    meta = config.agent_flow.model_copy(update={"name": f"replay-{uuid.uuid4().hex[:10]}"})
    return config.model_copy(update={"agent_flow": meta})


async def _finished_runs(client: Client, config: FlowConfig, count: int = 1) -> list[str]:
    """Workflow ids of ``count`` completed runs of ``config``."""
    ids = []
    async with flow_runner(client, config) as runner:
        for _ in range(count):
            handle = await runner.start({})
            await handle.result()
            ids.append(handle.workflow_id)
    return ids


async def _cli_report(
    capsys: pytest.CaptureFixture[str],
    flow: str,
    *flags: str,
    until: Callable[[dict[str, Any]], bool],
) -> tuple[int, dict[str, Any]]:
    """``replay --json`` for ``flow``, repeated until ``until(report)`` holds."""
    for _ in range(POLLS):
        code, out, _ = await cli(capsys, "replay", "--flow", flow, "--json", *flags)
        body: dict[str, Any] = json.loads(out)
        if until(body):
            break
        await asyncio.sleep(0.1)
    return code, body


def _counts(body: dict[str, Any]) -> tuple[int, int, int]:
    return body["replayed"], body["open"], body["closed"]


# Unsandboxed: the sandbox would re-import this test module and its fixtures.
@workflow.defn(name="SequentialFlow", sandboxed=False)
class PausingSequentialFlow:
    """A 'deploy' that adds a pause before the first agent, without ``workflow.patched``."""

    @workflow.run
    async def run(self, flow_input: FlowInput) -> None:
        await workflow.sleep(timedelta(seconds=1))


@workflow.defn(name="SequentialFlow", sandboxed=False)
class RaisingSequentialFlow:
    """A 'deploy' whose code cannot read what old runs were started with."""

    @workflow.run
    async def run(self, flow_input: FlowInput) -> None:
        raise ValueError('no "agents" in the old input\\n\nsecond line')


def _with(replacement: type | None) -> list[type]:
    """agentflow's workflows with SequentialFlow replaced (or, with None, removed)."""
    others = [cls for cls in ALL_WORKFLOWS if cls.__name__ != "SequentialFlow"]
    return others if replacement is None else [*others, replacement]


async def _replay_until_listed(client: Client, flow: str, **options: Any) -> ReplayReport:
    """``replay_runs`` for ``flow``, repeated until visibility lists its run."""
    for _ in range(POLLS):
        report = await replay_runs(client, flow=flow, **options)
        if report.replayed:
            break
        await asyncio.sleep(0.1)
    return report


async def test_runs_of_the_current_code_all_replay(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _named_uniquely(append_then_noop())
    await _finished_runs(client, config, count=2)
    code, body = await _cli_report(capsys, config.name, until=lambda b: b["closed"] == 2)
    assert code == 0 and body["failed"] == []
    assert _counts(body) == (2, 0, 2)
    code, out, err = await cli(capsys, "replay", "--flow", config.name)
    assert code == 0 and err == ""
    assert out == "replayed 2 runs (0 open, 2 closed): 0 would break\n"


@pytest.mark.parametrize(
    ("changed", "error"),
    [(PausingSequentialFlow, "NondeterminismError: [TMPRL1100] Nondeterminism error: "),
     (RaisingSequentialFlow, 'workflow task failed: no "agents" in the old input\\n')],
)  # fmt: skip
async def test_a_changed_workflow_is_reported(client: Client, changed: type, error: str) -> None:
    config = _named_uniquely(append_then_noop())
    [workflow_id] = await _finished_runs(client, config)
    report = await _replay_until_listed(client, config.name, workflows=_with(changed))
    assert report.replayed == 1 and len(report.failed) == 1
    failure = report.failed[0]
    assert (failure.workflow_id, failure.workflow_type) == (workflow_id, "SequentialFlow")
    assert failure.error.startswith(error)
    assert "second line" not in failure.error and "Failure {" not in failure.error
    assert list(report.model_dump(mode="json")["failed"][0]) == [
        "workflow_id", "run_id", "workflow_type", "error",
    ]  # fmt: skip
    unchanged = await replay_runs(client, flow=config.name)
    assert (unchanged.replayed, unchanged.failed) == (1, [])


async def test_a_workflow_type_the_code_lost_is_reported(client: Client) -> None:
    config = _named_uniquely(append_then_noop())
    await _finished_runs(client, config)
    report = await _replay_until_listed(client, config.name, workflows=_with(None))
    assert [f.error.split(" (")[0] for f in report.failed] == [
        "no workflow named 'SequentialFlow' in this code"
    ]


async def test_json_is_one_object(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _named_uniquely(append_then_noop())
    await _finished_runs(client, config)
    await _cli_report(capsys, config.name, until=lambda b: b["closed"] == 1)
    code, out, _ = await cli(capsys, "replay", "--flow", config.name, "--json", "--since", "2h")
    assert code == 0 and out.count("\n") == 1
    assert json.loads(out) == {"replayed": 1, "open": 0, "closed": 1, "skipped": 0, "failed": []}


async def test_open_leaves_out_closed_runs(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _named_uniquely(
        flow_config("sequential", {"a": "tests.agents:append", "b": "tests.obs_agents:gate"},
                    sequential_agents=["a", "b"])
    )  # fmt: skip
    gate = cli_env / "gate"
    async with flow_runner(client, config) as runner:
        (cli_env / "open").touch()
        await (await runner.start({"gate_file": str(cli_env / "open")})).result()
        running = await runner.start({"gate_file": str(gate)})  # waits in b until the gate
        try:
            _, both = await _cli_report(
                capsys, config.name, until=lambda b: (b["open"], b["closed"]) == (1, 1)
            )
            code, only_open = await _cli_report(
                capsys, config.name, "--open", until=lambda b: b["replayed"] > 0
            )
        finally:
            gate.touch()
        await running.result()
    assert _counts(both) == (2, 1, 1)
    assert code == 0 and only_open["failed"] == []
    assert _counts(only_open) == (1, 1, 0)


@pytest.mark.parametrize("since", ["bogus", "0m", "2 h", "1h30m", "-5m", "5", "1w"])
def test_a_bad_duration_is_one_line_and_exit_2(
    since: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", f"--since={since}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "90s, 30m, 2h or 7d" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--open", "--since", "2h"], "exclude each other"), (["--limit", "0"], "at least 1"),
     (["--config", "missing.toml"], "missing.toml: file not found")],
)  # fmt: skip
def test_bad_flags_are_exit_2(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(["replay", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_durations() -> None:
    assert [parse_duration(text) for text in ("90s", "30m", "2h", "7d")] == [
        timedelta(seconds=90), timedelta(minutes=30), timedelta(hours=2), timedelta(days=7),
    ]  # fmt: skip


def test_the_window_query() -> None:
    closed_since = datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert visibility.running_or_closed_since_query(closed_since, "it's") == (
        "AgentflowFlow IS NOT NULL AND AgentflowFlow = 'it\\'s' AND "
        "(ExecutionStatus = 'Running' OR CloseTime > '2026-01-02T03:04:05Z')"
    )
    assert visibility.running_or_closed_since_query(None).endswith(
        "NOT NULL AND ExecutionStatus = 'Running'"
    )
