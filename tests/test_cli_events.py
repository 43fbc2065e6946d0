"""The event commands: ``emit``, ``session show|list|close``, ``dead-letters list|show|redrive|
purge``, driven in-process against the real dev server."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio.client import Client

from agentflow.cli.main import main
from agentflow.client import sessions
from agentflow.client.dead_letters import read_letter, redriven_event
from agentflow.config import load_config
from agentflow.names import session_workflow_id
from tests.conftest import running_worker
from tests.test_cli import TOP_KEYS, cli, one_json_object, write_config

T = TypeVar("T")

FLOW = """
[agent_flow]
name = "cli-events"
[orchestration]
mode = "sequential"
sequential_agents = ["remember", "check"]
[orchestration.retry]
initial_interval_seconds = 0.05
[agents.remember]
handler = "tests.event_agents:remember"
[agents.check]
handler = "tests.event_agents:check"
"""
OUTCOME_KEYS = {"event_id", "session", "workflow_id", "status", "result", "dead_letter_id",
                "reason", "error"}  # fmt: skip


def _session() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


async def until(check: Callable[[], Awaitable[T | None]], timeout: float = 30.0) -> T:
    """``check()``'s first truthy value (visibility and sessions catch up asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{check} never held")
        await asyncio.sleep(0.1)


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("agentflow: error: ")
    return lines[0]


class Cli:
    """The commands of one test: its flow file, its session and its worker's task queue."""

    def __init__(self, capsys: pytest.CaptureFixture[str], flow: Path, session: str) -> None:
        self.capsys, self.flow, self.session, self.queue = capsys, str(flow), session, "none"

    async def emit(self, data: dict[str, Any], *options: str) -> tuple[int, str, str]:
        return await cli(
            self.capsys, "emit", "--config", self.flow, "--session", self.session,
            "--task-queue", self.queue, "--input", json.dumps(data), *options,
        )  # fmt: skip

    async def show(self) -> dict[str, Any]:
        code, out, err = await cli(self.capsys, "session", "show", self.session, "--config",
                                   self.flow, "--json")  # fmt: skip
        assert code == 0, err
        return one_json_object(out)

    async def letters(self, *options: str) -> list[dict[str, Any]]:
        code, out, err = await cli(self.capsys, "dead-letters", "list", "--session", self.session,
                                   "--json", *options)  # fmt: skip
        assert code == 0, err
        return [json.loads(line) for line in out.splitlines()]

    async def processed(self, count: int) -> dict[str, Any]:
        """The session's view once ``count`` events have completed or been handled."""

        async def done() -> dict[str, Any] | None:
            view = await self.show()
            counts = view["counts"]
            return view if counts["completed"] + counts["handled"] >= count else None

        return await until(done)


@pytest.fixture
def flow(cli_env: Path) -> Path:
    return write_config(cli_env, FLOW)


async def test_emit_then_session_show_and_list(
    client: Client, flow: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Cli(capsys, flow, _session())
    async with running_worker(client, load_config(flow)) as run.queue:
        code, out, _ = await run.emit({"msg": "a"}, "--json")
        body = one_json_object(out)
        assert code == 0
        assert body == {
            "event_id": body["event_id"], "session": run.session,
            "workflow_id": f"cli-events:session:{run.session}", "status": "queued",
        }  # fmt: skip
        view = await run.processed(1)
        code, out, _ = await cli(capsys, "session", "show", run.session, "--config", str(flow))
    assert view["status"] == "idle" and view["context"] == {"history": ["a"]}
    assert view["counts"] == {"emitted": 1, "completed": 1, "handled": 0, "dead_lettered": 0,
                              "duplicates": 0, "queued": 0, "usage": None}  # fmt: skip
    assert code == 0 and f"session {run.session} · flow cli-events · idle" in out
    assert "1 emitted · 1 completed · 0 handled · 0 dead-lettered · 0 duplicates · 0 queued" in out

    async def listed() -> list[dict[str, Any]]:
        code, out, _ = await cli(capsys, "session", "list", "--flow", "cli-events", "--json")
        assert code == 0
        return [row for row in map(json.loads, out.splitlines()) if row["session"] == run.session]

    rows = await until(listed)
    assert [(r["status"], r["workflow_id"]) for r in rows] == [
        ("running", session_workflow_id("cli-events", run.session))
    ]


async def test_emit_wait_json_and_dedupe_by_event_id(
    client: Client, flow: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run, calls = Cli(capsys, flow, _session()), tmp_path / "calls.txt"
    data = {"msg": "a", "calls_file": str(calls)}
    async with running_worker(client, load_config(flow)) as run.queue:
        code, out, _ = await run.emit(data, "--event-id", "pay-1", "--wait", "--json")
        first = one_json_object(out)
        again, out, _ = await run.emit(data, "--event-id", "pay-1", "--wait", "--json")
        second = one_json_object(out)
        text, out, _ = await run.emit({"msg": "b"}, "--within", "1h", "--wait")
        view = await run.show()
    assert code == 0 and set(first) == OUTCOME_KEYS
    assert (first["event_id"], first["session"], first["status"]) == ("pay-1", run.session,
                                                                      "completed")  # fmt: skip
    assert set(first["result"]) == TOP_KEYS - {"run_id"}
    assert first["result"]["state"]["context"] == {"history": ["a"]}
    # The same id again: the session answers with the first event's outcome, never runs it.
    assert again == 0 and (second["event_id"], second["status"]) in {
        ("pay-1", "completed"), ("pay-1", "duplicate")
    }  # fmt: skip
    assert calls.read_text().splitlines() == ["pay-1"]
    assert text == 0 and "flow 'cli-events' (sequential): completed" in out
    assert '"history_before": [\n      "a"\n    ]' in out
    assert (view["counts"]["emitted"], view["counts"]["duplicates"]) == (2, 1)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--priority", "urgent"], "--priority: unknown 'urgent'"),
        (["--deadline", "tomorrow"], "--deadline: 'tomorrow' is not an RFC 3339 time"),
        (["--deadline", "2026-11-21T15:00:00"], "has no UTC offset; RFC 3339 requires one"),
        (["--within", "soon"], "--within: bad duration 'soon'"),
        (["--deadline", "2026-11-21T15:00:00Z", "--within", "1h"], "give one of them"),
        (["--session", "x" * 300], "--session: 300 bytes; at most 256"),
        (["--event-id", ""], "--event-id: must not be empty"),
        (["--target", "nobody"], "--target: no enabled agent 'nobody'"),
        (["--input", "{oops"], "--input: the value is not valid JSON"),
    ],
)
def test_emit_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    flow = write_config(tmp_path, FLOW)  # nothing connects: every check runs first
    assert main(["emit", "--config", str(flow), *options]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and expected in one_line_error(captured.err)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["dead-letters", "redrive"], "give one dead letter id or --all"),
        (["dead-letters", "purge", "x", "--all"], "give one dead letter id or --all"),
        (["dead-letters", "purge", "x", "--session", "s"], "--session and --flow go with --all"),
        (["session", "list", "--status", "open"], "--status: unknown 'open'; allowed: running"),
    ],
)
def test_letter_and_session_commands_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    flow = write_config(tmp_path, FLOW)
    if argv[1] == "redrive":
        argv = [*argv, "--config", str(flow)]
    assert main(argv) == 2
    assert expected in one_line_error(capsys.readouterr().err)


async def test_show_without_a_worker_says_one_must_run(
    flow: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Cli(capsys, flow, _session())
    run.queue = f"nobody-{uuid.uuid4().hex[:8]}"
    code, out, err = await run.emit({"msg": "a"})
    assert code == 0 and out.startswith("queued event ")
    assert f"no worker polls task queue {run.queue!r}; the event waits" in err
    started = time.monotonic()
    code, _, err = await cli(capsys, "session", "show", run.session, "--config", str(flow))
    assert code == 1 and time.monotonic() - started < 10
    assert "one must run to answer what running session" in one_line_error(err)


async def test_close_keeps_the_context_and_emit_reopens_it(
    client: Client, flow: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    run, config = Cli(capsys, flow, _session()), load_config(flow)
    workflow_id = session_workflow_id(config.name, run.session)
    async with running_worker(client, config) as run.queue:
        assert (await run.emit({"msg": "a"}, "--wait", "--json"))[0] == 0
        code, out, _ = await cli(capsys, "session", "close", run.session, "--config", str(flow),
                                 "--by", "tester")  # fmt: skip
        assert code == 0 and out.startswith(f"session {run.session} closes; ")
        await asyncio.wait_for(client.get_workflow_handle(workflow_id).result(), 30)
        closed = await run.show()
        code, out, _ = await cli(capsys, "session", "list", "--status", "closed", "--json")
        assert code == 0 and run.session in out
        code, out, _ = await run.emit({"msg": "b"}, "--wait", "--json")
        gc.collect()  # an unread error of the refused first start would be logged now
        reopened = await run.show()
    assert (closed["status"], closed["closed_reason"]) == ("closed", "closed by tester")
    assert closed["context"] == {"history": ["a"]}
    assert code == 0
    assert one_json_object(out)["result"]["state"]["data"]["history_before"] == ["a"]
    assert reopened["context"] == {"history": ["a", "b"]} and reopened["runs"] == 2
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_dead_letters_list_show_redrive_purge(
    client: Client, flow: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run, config = Cli(capsys, flow, _session()), load_config(flow)
    block, calls = tmp_path / "block", tmp_path / "calls.txt"
    block.touch()
    data = {"msg": "x", "block_file": str(block), "calls_file": str(calls)}
    async with running_worker(client, config) as run.queue:
        code, out, _ = await run.emit(data, "--event-id", "ev-1", "--wait", "--json")
        failed = one_json_object(out)
        letter = failed["dead_letter_id"]
        assert code == 1 and (failed["status"], failed["reason"]) == ("dead_lettered",
                                                                      "agent failed")  # fmt: skip
        assert (await run.show())["context"] == {}  # a dead-lettered event commits nothing

        rows = await until(run.letters)
        assert [(r["id"], r["status"], r["event_id"], r["failed_agent"]) for r in rows] == [
            (letter, "open", "ev-1", "check")
        ]
        assert "FatalError: blocked by block" in rows[0]["error"]
        code, out, _ = await cli(capsys, "dead-letters", "show", letter, "--json")
        shown = one_json_object(out)
        assert code == 0 and shown["status"] == "open" and shown["letter"]["event"]["data"] == data

        other = tmp_path / "other"
        other.mkdir()
        elsewhere = write_config(other, FLOW.replace("cli-events", "else"))
        code, _, err = await cli(capsys, "dead-letters", "redrive", letter, "--config",
                                 str(elsewhere))  # fmt: skip
        assert code == 2 and "is of flow 'cli-events'" in one_line_error(err)

        # A redrive that crashed after emitting: the same new id again is a duplicate.
        block.unlink()
        record = await read_letter(client, letter)
        await sessions.emit(client, config, run.queue, redriven_event(config, record.view.letter),
                            redrive_of=letter)  # fmt: skip
        code, out, _ = await cli(capsys, "dead-letters", "redrive", letter, "--config", str(flow),
                                 "--by", "tester")  # fmt: skip
        assert code == 0 and out.strip() == (
            f"redriven {letter} as event ev-1.r1 into session {run.session}"
        )
        code, out, _ = await cli(capsys, "dead-letters", "redrive", letter, "--config", str(flow))
        assert code == 0 and f"{letter}: already redriven as event ev-1.r1 by tester" in out
        view = await run.processed(1)
        assert view["counts"] == {"emitted": 2, "completed": 1, "handled": 0, "dead_lettered": 1,
                                  "duplicates": 1, "queued": 0, "usage": None}  # fmt: skip
        assert calls.read_text().splitlines() == ["ev-1", "ev-1.r1"]
        assert view["context"] == {"history": ["x"]}

        block.touch()
        code, out, _ = await run.emit(data, "--event-id", "ev-2", "--wait", "--json")
        purged = one_json_object(out)["dead_letter_id"]
        code, out, _ = await cli(capsys, "dead-letters", "purge", purged, "--by", "tester")
        assert code == 0 and out.strip() == f"purged {purged}"
        code, out, _ = await cli(capsys, "dead-letters", "purge", purged)
        assert code == 0 and f"{purged}: already purged by tester" in out
        code, _, err = await cli(capsys, "dead-letters", "redrive", purged, "--config", str(flow))
        assert code == 1 and "is purged" in one_line_error(err)

    async def decided() -> dict[str, tuple[str, str | None]] | None:
        rows = {r["id"]: (r["status"], r["redriven_as"]) for r in await run.letters("--all")}
        return rows if len(rows) == 2 and "open" not in {s for s, _ in rows.values()} else None

    assert await until(decided) == {letter: ("redriven", "ev-1.r1"), purged: ("purged", None)}
    assert await until(lambda: _none_open(run)) == "none open"


async def _none_open(run: Cli) -> str | None:
    return None if await run.letters() else "none open"


async def test_an_unreadable_event_is_a_letter_that_cannot_be_redriven(
    client: Client, flow: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, config = Cli(capsys, flow, _session()), load_config(flow)
    async with running_worker(client, config) as run.queue:
        assert (await run.emit({"msg": "a"}, "--wait", "--json"))[0] == 0
        handle = client.get_workflow_handle(session_workflow_id(config.name, run.session))
        await handle.signal("emit", {"junk": 1})
        rows = await until(run.letters)
        assert [(r["reason"], r["event_id"]) for r in rows] == [("unreadable", None)]
        code, out, _ = await cli(capsys, "dead-letters", "show", rows[0]["id"])
        assert code == 0 and 'what arrived: {"junk":1}' in out
        code, _, err = await cli(capsys, "dead-letters", "redrive", rows[0]["id"], "--config",
                                 str(flow))  # fmt: skip
        every, out, _ = await cli(capsys, "dead-letters", "redrive", "--all", "--session",
                                  run.session, "--config", str(flow))  # fmt: skip
        view = await run.show()
    assert code == 1 and "could not be read" in one_line_error(err)
    assert every == 1 and out.splitlines()[0].startswith(f"✗ {rows[0]['id']}: ")
    assert out.splitlines()[1] == (
        f"0 of 1 open dead letters redriven (flow cli-events, session {run.session}); "
        "1 could not be"
    )
    assert view["counts"]["dead_lettered"] == 1 and view["counts"]["emitted"] == 2
