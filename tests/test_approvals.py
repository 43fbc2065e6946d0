"""People in the loop: agents that wait for a person's approval, durably (issue 11).

One run serves most assertions (declared before/after approvals, a handler that raises and one
that returns ApprovalRequired, the Update's validator, a race of approve and reject, pending,
the trace); timeouts use 1 s, since the dev server cannot skip time.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetStickyTaskQueueRequest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from agentflow.client import approvals
from agentflow.client.approvals import ApprovalDecisionError, PendingApproval
from agentflow.client.runner import Runner
from agentflow.config import load_config
from agentflow.errors import ConfigError
from agentflow.inspect.trace.read import trace
from agentflow.models.approval import Approval
from agentflow.models.flow import FlowFailedError
from agentflow.names import session_workflow_id
from agentflow.worker.plugin import ALL_WORKFLOWS
from agentflow.worker.serve import build_worker
from tests._worker_process import WorkerProcess
from tests.approval_goldens import APPROVAL_GOLDENS, HISTORIES, waiting_for
from tests.conftest import REPO, cli, flow_config, flow_runner, running_worker

APPEND = "tests.agents:append"
ASK = "tests.approval_agents:ask"
WAIT_SECONDS = 30.0


async def listed(
    client: Client, workflow_id: str, agent: str | None, **filters: Any
) -> list[PendingApproval]:
    """``agentflow pending`` rows of ``workflow_id`` once visibility shows ``agent`` waiting
    there (None: once nothing waits there any more)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        rows = [r async for r in approvals.pending(client, **filters)
                if r.workflow_id == workflow_id]  # fmt: skip
        if [r.agent for r in rows] == ([agent] if agent else []):
            return rows
        if time.monotonic() > deadline:
            raise TimeoutError(f"pending never showed {agent} for {workflow_id}: {rows}")
        await asyncio.sleep(0.1)


async def test_declared_and_handler_approvals_in_one_run(client: Client) -> None:
    config = flow_config(
        "sequential",
        {
            "gate": {"handler": APPEND, "approval": "before"},
            "ask": ASK,
            "returns": "tests.approval_agents:ask_returning",
            "review": {"handler": APPEND, "approval": "after"},
            "done": APPEND,  # the run goes on after the race, so the loser meets a live run
        },
        sequential_agents=["gate", "ask", "returns", "review", "done"],
    )
    async with flow_runner(client, config) as runner:
        run = await runner.start({"trail": []})
        handle, wid = run.handle, run.workflow_id

        gate = await waiting_for(handle, "gate")
        assert (gate.point, gate.status, gate.decided_by) == ("before", "waiting", None)
        [row] = await listed(client, wid, "gate")  # the search attribute and the memo
        assert row.point == "before" and row.flow == config.name
        # The validator turns these down; nothing is recorded.
        with pytest.raises(ApprovalDecisionError, match="agent 'review' is not waiting"):
            await runner.approve(wid, agent="review")
        approved = await runner.approve(wid, agent="gate", comment="looks fine", by="alice")
        assert (approved.status, approved.decided_by, approved.comment) == (
            "approved", "alice", "looks fine",
        )  # fmt: skip
        with pytest.raises(ApprovalDecisionError, match="was approved by alice"):
            await runner.reject(wid, "too late", agent="gate")

        asked = await waiting_for(handle, "ask")  # the handler raised ApprovalRequired
        assert (asked.point, asked.reason) == ("handler", "spend 50 EUR")
        assert asked.data == {"amount": 50}
        # Any client can decide, knowing only the workflow id: the raw Update.
        raw = client.get_workflow_handle(wid)
        await raw.execute_update("decide", {"approve": True, "by": "web"}, result_type=Approval)
        await waiting_for(handle, "returns")
        await runner.approve(wid, by="bob")  # the only one waiting: no --agent needed

        review = await waiting_for(handle, "review")  # after it ran, before its output flows on
        assert review.data["changed_keys"] == ["trail"]
        assert review.data["output"]["trail"] == ["gate", "review"]
        # An approve and a reject at once: exactly one wins, the other is turned down.
        outcomes = await asyncio.gather(
            runner.approve(wid, agent="review", by="carol"),
            runner.reject(wid, "not like this", agent="review", by="dave"),
            return_exceptions=True,
        )
        won = [o for o in outcomes if isinstance(o, Approval)]
        lost = [o for o in outcomes if isinstance(o, ApprovalDecisionError)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        try:
            result = await run.result()
        except FlowFailedError as err:
            result = err.result
        await listed(client, wid, None)  # nothing waits any more
        history = await handle.fetch_history()

    by_agent = {r.agent: r for r in result.results}
    assert by_agent["gate"].approval and by_agent["gate"].approval.decided_by == "alice"
    assert result.state.data["ask"] == "web" and result.state.data["returns"] == "bob"
    handler_approval = by_agent["ask"].approval
    assert handler_approval and handler_approval.point == "handler"
    review_result = by_agent["review"]
    assert review_result.approval is not None
    if won[0].status == "approved":
        assert result.status == "completed" and review_result.approval.decided_by == "carol"
    else:
        assert result.status == "failed" and review_result.error_type == "ApprovalRejected"
        assert "rejected by dave: not like this" in (result.error or "")
    # Turned-down decisions left no trace in history: one accepted Update per decision.
    kind = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    assert len([e for e in history.events if e.event_type == kind]) == 4

    lines = [(e.agent, e.action, e.detail) for e in await trace(client, wid)]
    assert any(a == "gate" and act == "waiting" and d.startswith('approval = "before"')
               for a, act, d in lines)  # fmt: skip
    assert any(a == "gate" and act == "approved" and "by alice: looks fine" in d
               for a, act, d in lines)  # fmt: skip
    assert any(a == "ask" and act == "waiting" and "spend 50 EUR" in d for a, act, d in lines)


async def test_a_timeout_decides_by_each_agents_on_timeout(client: Client) -> None:
    def waits(on_timeout: str) -> dict[str, Any]:
        return {"handler": APPEND, "approval": "before", "approval_timeout_seconds": 1,
                "on_timeout": on_timeout}  # fmt: skip

    config = flow_config(
        "collaborative",
        {
            "goes": waits("approve"),
            "stops": waits("reject"),
            "fails": waits("fail"),
            "greedy": "tests.approval_agents:ask_too_much",
        },
        collaborative_agents=["goes", "stops", "fails", "greedy"],
        failure_threshold=1.0,  # the run reports them all
    )
    async with flow_runner(client, config) as runner:
        result = await asyncio.wait_for(runner.run({"trail": []}), WAIT_SECONDS)

    by_agent = {r.agent: r for r in result.results}
    goes, stops, fails = by_agent["goes"], by_agent["stops"], by_agent["fails"]
    assert goes.status == "completed" and result.state.data["trail"] == ["goes"]
    assert goes.approval and goes.approval.timed_out and goes.approval.decided_by == "timeout"
    assert (stops.status, stops.error_type) == ("failed", "ApprovalRejected")
    assert stops.error == "approval of 'stops' rejected by on_timeout = \"reject\""
    assert (fails.status, fails.error_type) == ("failed", "ApprovalTimedOut")
    assert fails.approval and fails.approval.status == "timed_out"
    assert "nobody decided within 1s" in (fails.error or "")
    greedy = by_agent["greedy"]  # its request could not be shown: a bad output, not retried
    assert (greedy.error_type, greedy.attempt) == ("AgentOutputError", 1)
    assert "agent 'greedy' asked for approval with bad data" in (greedy.error or "")


async def test_a_rejection_goes_to_error_routing_or_to_dead_letters(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = {"handler": APPEND, "approval": "before"}
    routed = flow_config(
        "sequential", {"gate": gate, "fixer": "tests.approval_agents:fixer"},
        sequential_agents=["gate"],
        tables={"error_routing": {"category_handlers": {"rejected": "fixer"}}},
    )  # fmt: skip
    in_sessions = flow_config("sequential", {"gate": gate}, sequential_agents=["gate"],
                              tables={"agent_flow": {"name": "approvals-session"}})  # fmt: skip
    async with running_worker(client, routed, in_sessions) as queue:
        runner = Runner(routed, client, queue)
        run = await runner.start({})
        await waiting_for(run.handle, "gate")
        await runner.reject(run.workflow_id, "not today", by="bob")
        result = await run.result()
        assert (result.status, result.handled_by) == ("handled", "fixer")
        assert result.state.data["fixed"] == ["gate", "rejected", "ApprovalRejected"]

        # In a session, from the command line: no handler, so the event is dead-lettered.
        session = f"s-{uuid.uuid4().hex[:8]}"
        emitted = await Runner(in_sessions, client, queue).emit({}, session_id=session)
        wid = session_workflow_id(in_sessions.name, session)
        await listed(client, wid, "gate", session=session)
        code, out, _ = await cli(capsys, "pending", "--session", session, "--json")
        row = json.loads(out)
        assert code == 0 and (row["workflow_id"], row["agent"]) == (wid, "gate")
        code, out, _ = await cli(capsys, "reject", "--session", session, "--reason", "spam",
                                 "--by", "eve")  # fmt: skip
        assert code == 0 and out.startswith(f"rejected gate in {wid}"), out
        outcome = await emitted.outcome()
        assert outcome.status == "dead_lettered"
        assert "approval of 'gate' rejected by eve: spam" in (outcome.error or "")
        # Nothing waits now: one clear line, exit 1; no RUN nor --session: bad input, exit 2.
        code, _, err = await cli(capsys, "approve", wid)
        assert code == 1 and "no agent waits for approval" in err and "rejected by eve" in err
        code, _, err = await cli(capsys, "approve")
        assert code == 2 and "give the RUN's workflow id or --session" in err


FLOW_FILE = """
[agent_flow]
name = "approval-restart"
[orchestration]
mode = "sequential"
sequential_agents = ["gate", "after"]
timeout_seconds = 120
workflow_task_timeout_seconds = 2  # the task the killed worker's last poll got: retried soon
[agents.gate]
handler = "tests.agents:append"
approval = "before"
[agents.after]
handler = "tests.agents:append"
"""


async def test_an_approval_waits_across_a_worker_restart(client: Client, tmp_path: Path) -> None:
    config_path = tmp_path / "agentflow.toml"
    config_path.write_text(FLOW_FILE)
    queue = f"approval-restart-{uuid.uuid4().hex[:8]}"
    runner = Runner(load_config(config_path), client, queue)
    address, log = client.service_client.config.target_host, tmp_path / "worker.log"
    first = WorkerProcess(config_path, queue, address, log).start()
    try:
        run = await runner.start({"trail": []})
        await waiting_for(run.handle, "gate")
    finally:
        first.kill()  # SIGKILL while the run waits: nothing of it is left in a worker
    # Temporal would hold the run's next task for the dead worker for 10 s (its sticky queue's
    # schedule-to-start timeout) before any worker may take it; skip that wait.
    await client.workflow_service.reset_sticky_task_queue(ResetStickyTaskQueueRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=run.workflow_id),
    ))  # fmt: skip
    # The decision waits for a worker to take it; the next worker (here in-process) finds the
    # wait in history.
    decided = asyncio.ensure_future(approvals.decide(
        client, run.workflow_id, approvals.decision(True, "gate", "ops"), timeout=60,
    ))  # fmt: skip
    async with build_worker(client, [(runner.config, REPO)], task_queue=queue):
        approval = await decided
        result = await asyncio.wait_for(run.result(), WAIT_SECONDS)
    assert approval.decided_by == "ops"
    assert result.state.data["trail"] == ["gate", "after"]


@pytest.mark.parametrize("name", APPROVAL_GOLDENS)
async def test_golden_approval_history_replays(name: str) -> None:
    path = HISTORIES / f"{name}.json"
    history = WorkflowHistory.from_json(f"golden-{name}", json.loads(path.read_text()))
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    assert (await replayer.replay_workflow(history)).replay_failure is None


def test_approval_keys_are_checked_at_load_time() -> None:
    def agent(**table: Any) -> None:
        flow_config("sequential", {"a": {"handler": APPEND, **table}}, sequential_agents=["a"])

    with pytest.raises(ConfigError, match=r"agents\.a\.approval: Input should be 'before' or"):
        agent(approval="during")
    with pytest.raises(ConfigError, match="on_timeout needs approval_timeout_seconds"):
        agent(approval="before", on_timeout="approve")
    with pytest.raises(ConfigError, match=r"agents\.a\.on_timeout: Input should be 'reject'"):
        agent(approval="after", approval_timeout_seconds=5, on_timeout="maybe")
    with pytest.raises(ConfigError, match="approval_timeout_seconds: Input should be greater"):
        agent(approval="after", approval_timeout_seconds=0)
