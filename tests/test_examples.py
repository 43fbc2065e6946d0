"""The shipped flows: agentflow.toml (the demo) and one example per mode in examples/."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow import FlowResult
from agentflow.client.runner import Runner
from agentflow.config import load_config
from agentflow.worker.serve import build_worker
from tests.conftest import REPO

DEMO_INPUT = json.loads((REPO / "agentflow" / "demo" / "input.json").read_text())


async def _run(
    client: Client, config_file: str, data: dict[str, Any], **options: Any
) -> FlowResult:
    path = REPO / config_file
    config = load_config(path)
    queue = f"example-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, [(config, path.parent)], task_queue=queue):
        return await Runner(config, client, queue).run(data, **options)


async def test_demo_flow_reviews_the_article(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the publisher writes .agentflow/reports/ under the cwd
    result = await _run(client, "agentflow.toml", DEMO_INPUT)
    data = result.state.data
    assert [r.agent for r in result.results] == [
        "stats", "keywords", "sentiment", "entities", "summarizer", "editor", "publisher",
    ]  # fmt: skip
    assert data["stats"]["sentences"] == 10 and data["stats"]["paragraphs"] == 3
    assert data["entities"] == {"names": ["Acme Robotics"], "years": ["2024"],
                                "percentages": ["80%"]}  # fmt: skip
    assert data["keywords"][0] == {"word": "agent", "count": 4}
    summary_sentences = [s for s in data["summary"].split(". ") if s]
    assert len(summary_sentences) == 3 and all(s in data["text"] for s in summary_sentences)
    assert "sentence 10 has 31 words; consider splitting it" in data["issues"]
    report = (tmp_path / data["report_path"]).read_text()
    assert report.startswith(f"# Report: {DEMO_INPUT['title']}")
    assert result.state.meta["published"] == "true"


async def test_route_example_escalates_outages(client: Client) -> None:
    outage = {"ticket": "Login fails with an error since the outage"}
    refund = {"ticket": "I was charged twice, please refund the invoice"}
    escalated = await _run(client, "examples/route.toml", outage)
    billed = await _run(client, "examples/route.toml", refund)
    assert escalated.path == ["triage", "technical", "escalation"]
    assert escalated.state.data["priority"] == "P1"
    assert billed.path == ["triage", "billing"]


async def test_loop_example_tightens_until_nothing_is_left(client: Client) -> None:
    text = "In order to ship, we really need to basically test it very well."
    result = await _run(client, "examples/loop.toml", {"text": text})
    assert result.state.data["text"] == "to ship, we need to test it well."
    assert (result.iterations, result.stop_reason) == (5, "loop_complete")


async def test_sequential_and_collaborative_examples(client: Client) -> None:
    sequential = await _run(client, "examples/sequential.toml", DEMO_INPUT)
    parallel = await _run(client, "examples/collaborative.toml", DEMO_INPUT)
    assert {"keywords", "summary", "readability"} <= sequential.state.data.keys()
    assert {"stats", "keywords", "sentiment", "entities"} <= parallel.state.data.keys()
    assert parallel.mode == "collaborative"


def test_every_example_config_validates() -> None:
    configs = [REPO / "agentflow.toml", *sorted((REPO / "examples").glob("*.toml"))]
    modes = {load_config(path).mode for path in configs}
    assert modes == {"route", "sequential", "collaborative", "loop", "mixed"}


async def test_bus_example_audits_and_notifies(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the subscribers write under .agentflow/ in the cwd
    result = await _run(client, "examples/bus.toml", DEMO_INPUT)
    assert [(r.agent, r.topic) for r in result.results] == [
        ("keywords", None), ("summarizer", None), ("announcer", None),
        ("auditor", "article.summarized"), ("notifier", "article.summarized"),
    ]  # fmt: skip
    assert result.state.data["announced"] is True and "notification" not in result.state.data
    [line] = (tmp_path / ".agentflow" / "audit.log").read_text().splitlines()
    words = len(result.state.data["summary"].split())
    assert line.endswith(f"article.summarized from announcer: {DEMO_INPUT['title']!r}, "
                         f"summary of {words} words")  # fmt: skip
    [note] = (tmp_path / ".agentflow" / "outbox").iterdir()
    assert note.read_text().startswith(f"New summary: {DEMO_INPUT['title']}")


async def test_session_example_keeps_the_conversation(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the audit hook writes .agentflow/audit/ under the cwd
    path = REPO / "examples" / "session.toml"
    config = load_config(path)
    queue, session = f"example-{uuid.uuid4().hex[:8]}", f"user-{uuid.uuid4().hex[:6]}"
    async with build_worker(client, [(config, path.parent)], task_queue=queue):
        runner = Runner(config, client, queue)
        outcomes = []
        for message in ["hi", "where is my order?", "", "my password is hunter2"]:
            handle = await runner.emit({"message": message}, session_id=session, wait=True)
            outcomes.append(await handle.outcome())
    hello, order, empty, secret = outcomes
    assert hello.result and hello.result.state.data["reply"] == "Hello! How can I help?"
    assert order.result and order.result.state.data["reply"] == "Your order is on its way."
    assert order.result.state.context["history"] == ["hi", "where is my order?"]
    assert empty.status == "handled" and empty.result
    assert empty.result.state.data["failed_agent"] == "answer"
    assert (secret.status, secret.reason) == ("dead_lettered", "hook rejected")
    audit = (tmp_path / ".agentflow" / "audit" / "support-chat.log").read_text().splitlines()
    assert [line.split("\t")[2] for line in audit] == ["ok", "ok", "error"]
