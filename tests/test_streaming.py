"""Live streaming (temporalio.contrib.workflow_streams): what a run publishes, watchers that join
mid-run or resume from an offset, a retried agent's tokens shown once, sessions carrying their
stream across continue-as-new, ``agentflow watch`` and the live view of ``agentflow run``."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from agentflow.cli.main import main
from agentflow.cli.watch import follow_run
from agentflow.client.runner import FlowHandle
from agentflow.config import FlowConfig
from agentflow.models.session import SessionView
from agentflow.models.stream import Streamed, StreamItem, TokenDedupe
from agentflow.names import CLOSE_UPDATE, SESSION, SESSION_WORKFLOW, session_workflow_id
from agentflow.worker.plugin import ALL_WORKFLOWS
from tests.conftest import cli, flow_config, flow_runner

TALKER = "tests.stream_agents:talker"
WAIT = 60.0


def _kinds(items: list[Streamed]) -> list[str]:
    return [f"{s.item.kind} {s.item.agent or ''}".strip() for s in items if s.item.kind != "tokens"]


def _tokens(items: list[Streamed], agent: str) -> str:
    return "".join(s.item.text or "" for s in items if s.item.kind == "tokens" and
                   s.item.agent == agent)  # fmt: skip


async def _collect(handle: FlowHandle, from_offset: int = 0) -> list[Streamed]:
    return [s async for s in handle.stream(from_offset)]


async def _running(handle: FlowHandle, agent: str) -> None:
    async def wait() -> None:
        while (await handle.progress()).running != [agent]:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), WAIT)


async def test_watchers_join_mid_run_resume_and_see_retried_tokens_once(
    client: Client, tmp_path: Path, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = flow_config(
        "sequential",
        {"a": "tests.agents:append", "b": "tests.obs_agents:gate", "c": TALKER},
        sequential_agents=["a", "b", "c"],
    )
    gate = tmp_path / "gate"
    # No workflow cache: every workflow task replays the run so far, stream and all.
    async with flow_runner(client, config, max_cached_workflows=0) as runner:
        handle = await runner.start({"gate_file": str(gate), "fail_first": True})
        await _running(handle, "b")
        # Two watchers join mid-run: one from the start, one resuming after "a completed".
        first = asyncio.ensure_future(_collect(handle))
        seen = [s async for s in _until(handle.stream(), "started", "b")]
        resume_at = next(s.offset for s in seen if s.item.kind == "completed") + 1
        resumed = asyncio.ensure_future(_collect(handle, resume_at))
        gate.touch()
        result = await asyncio.wait_for(handle.result(), WAIT)
        items, later = await asyncio.wait_for(asyncio.gather(first, resumed), WAIT)

        # A watcher joining after the end reads the same stream through the CLI.
        code, out, _ = await cli(capsys, "watch", handle.workflow_id, "--json")
        code_from, out_from, _ = await cli(
            capsys, "watch", handle.workflow_id, "--from-offset", str(resume_at), "--no-tokens"
        )
        # ``agentflow run`` on a terminal: the stream, not the progress query.
        gate.touch()
        again = await runner.start({"gate_file": str(gate)})
        shown = io.StringIO()
        await follow_run(client, again.workflow_id, asyncio.ensure_future(again.result()), shown)
        history = await handle.handle.fetch_history()

    assert result.status == "completed" and result.results[-1].attempt == 2
    assert _kinds(items) == [
        "flow_started", "started a", "completed a", "started b", "completed b", "started c",
        "retrying c", "completed c", "flow_finished",
    ]  # fmt: skip
    # The retry streamed "hello world" again after "hello " was shown: shown once.
    assert _tokens(items, "c") == "hello world"
    retry = next(s.item for s in items if s.item.kind == "retrying")
    assert (retry.attempt, retry.activity_id) == (2, "3-c")
    assert [s.offset for s in items] == sorted({s.offset for s in items})
    assert later[0].offset == resume_at and _kinds(later)[0] == "started b"
    assert [s.offset for s in later] == [s.offset for s in items if s.offset >= resume_at]
    finished = items[-1].item
    assert finished.data["status"] == "completed" and finished.event_id == items[0].item.event_id

    assert code == 0
    lines = [json.loads(text) for text in out.splitlines()]
    assert [row["offset"] for row in lines] == [s.offset for s in items]
    assert lines[1] | {"at": None} == {"offset": 1, "kind": "started", "agent": "a",
        "at": None, "event_id": items[0].item.event_id, "attempt": None,
        "activity_id": "1-a", "text": None, "data": {"step": 1}}  # fmt: skip
    assert code_from == 0
    plain = out_from.splitlines()
    assert plain[0].split()[0] == str(resume_at) and "→ b started (step 2)" in plain[0]
    assert "↻ c retrying (attempt 2)" in out_from and "│" not in out_from
    assert "■ flow completed (3 done, 0 failed)" in plain[-1]
    assert "✓ a completed" in shown.getvalue() and "■ flow completed" in shown.getvalue()

    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


async def _until(items: AsyncIterator[Streamed], kind: str, agent: str) -> AsyncIterator[Streamed]:
    async for streamed in items:
        yield streamed
        if (streamed.item.kind, streamed.item.agent) == (kind, agent):
            return


async def test_session_stream_follows_continue_as_new(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = flow_config(
        "sequential", {"a": "tests.agents:append"}, sequential_agents=["a"],
        tables={"sessions": {"events_per_run": 1}},
    )  # fmt: skip
    session = "stream-s1"
    async with flow_runner(client, config) as runner:
        first = await runner.emit({"n": 1}, session_id=session, wait=True)
        await first.outcome()
        query = f"{SESSION.name} = '{session}' AND WorkflowType = '{SESSION_WORKFLOW}'"

        async def listed() -> None:
            while not [w async for w in client.list_workflows(query, limit=1)]:
                await asyncio.sleep(0.1)

        await asyncio.wait_for(listed(), WAIT)
        second = await runner.emit({"n": 2}, session_id=session, wait=True)
        await second.outcome()
        code, out, err = await _watch_closed_session(capsys, client, config, session)
    assert code == 0, err
    rows = [json.loads(text) for text in out.splitlines()]
    kinds = [row["kind"] for row in rows]
    # Two events, each in its own run of the session: the stream went on across the move.
    assert kinds == ["flow_started", "started", "completed", "flow_finished"] * 2
    assert [row["offset"] for row in rows] == list(range(8))
    assert len({row["event_id"] for row in rows}) == 2


async def _watch_closed_session(
    capsys: pytest.CaptureFixture[str], client: Client, config: FlowConfig, session: str
) -> tuple[int, str, str]:
    """Close the session, then watch it: the watcher reads every kept item and returns."""
    handle = client.get_workflow_handle(session_workflow_id(config.name, session))
    await handle.execute_update(CLOSE_UPDATE, "test", result_type=SessionView)
    await asyncio.wait_for(handle.result(), WAIT)
    return await cli(capsys, "watch", "--session", session, "--json")


def test_token_dedupe_rewinds_a_retry_that_says_something_else() -> None:
    dedupe = TokenDedupe()

    def tokens(text: str, attempt: int) -> StreamItem | None:
        return dedupe.admit(StreamItem(kind="tokens", at="2026-01-01T00:00:00Z", text=text,
                                       attempt=attempt, activity_id="1-c"))  # fmt: skip

    assert tokens("hello ", 1).text == "hello "  # type: ignore[union-attr]
    assert tokens("hel", 2) is None  # repeats what was shown
    changed = tokens("p!", 2)
    assert changed is not None and (changed.text, changed.data) == ("help!", {"replaces": 6})
    assert tokens("late", 1) is None  # the superseded attempt still flushing


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["watch"], "give a workflow/run id or --session ID"),
        (["watch", "run-1", "--session", "s"], "give a workflow/run id or --session ID"),
        (["watch", "run-1", "--from-offset", "-1"], "--from-offset: must be 0 or more"),
    ],
)
def test_watch_refuses_bad_flags_before_connecting(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
