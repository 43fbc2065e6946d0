"""``cache = { ttl = ... }`` on an agent: a hit does not run it, is in history and the trace,
expires with its ttl, outlives the worker, saves an LLM agent's tokens, and is cleared by
``agentflow cache clear``; bad cache tables fail at load."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from agentflow.client.result_cache import SQLiteResults, clear_cache
from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, load_config, parse_config
from agentflow.errors import ConfigError
from agentflow.inspect.trace.read import trace
from tests._worker_process import WorkerProcess
from tests.cache_agents import CALLS, calls
from tests.conftest import REPO, cli, flow_config, flow_runner
from tests.llm_server import FakeLLM, running_fake

WAIT = 60.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


def _config(tmp_path: Path, ttl: str) -> FlowConfig:
    agents = {"a": {"handler": "tests.cache_agents:double", "cache": {"ttl": ttl}}}
    store = {"cache": {"path": str(tmp_path / "cache.sqlite")}}
    config = flow_config("sequential", agents, sequential_agents=["a"], tables=store)
    config.agent_flow.name = f"cache-{uuid.uuid4().hex[:8]}"
    return config


async def _run(runner: Runner, data: dict[str, Any]) -> tuple[str, Any]:
    handle = await runner.start(data)
    return handle.workflow_id, await asyncio.wait_for(handle.result(), WAIT)


async def test_a_hit_does_not_run_the_agent_and_the_trace_shows_it(
    client: Client, tmp_path: Path
) -> None:
    config, label = _config(tmp_path, "1h"), uuid.uuid4().hex
    async with flow_runner(client, config) as runner:
        _, first = await _run(runner, {"n": 4, "label": label})
        hit_id, second = await _run(runner, {"n": 4, "label": label})
        _, other = await _run(runner, {"n": 5, "label": label})  # another input: a miss
        entries = await trace(await runner.client(), hit_id, agent="a")
    assert calls(label) == 2
    assert first.state.data["doubled"] == second.state.data["doubled"] == 8
    assert other.state.data["doubled"] == 10
    assert [r.cached for r in (*first.results, *second.results)] == [False, True]
    done = [e for e in entries if e.action == "completed"]
    assert [e.detail for e in done] == ["cached"] and done[0].changed_keys == ["doubled"]


async def test_a_cached_result_expires_with_its_ttl(client: Client, tmp_path: Path) -> None:
    config, label = _config(tmp_path, "3s"), uuid.uuid4().hex
    async with flow_runner(client, config) as runner:
        await _run(runner, {"n": 1, "label": label})
        _, hit = await _run(runner, {"n": 1, "label": label})
        assert hit.results[0].cached and calls(label) == 1
        [stored] = _entries(tmp_path)
        async with asyncio.timeout(WAIT):  # until a run misses: the entry has expired
            while calls(label) == 1:
                await _run(runner, {"n": 1, "label": label})
                await asyncio.sleep(0.1)  # a poll's pace, not a wait for the ttl
    assert CALLS[label][1] >= stored["expires_at"]  # it ran again only once the ttl was over


def _entries(tmp_path: Path) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        return [json.loads(row[0]) for row in db.execute("SELECT entry FROM results")]


async def test_the_cache_outlives_the_worker_process_and_cache_clear_empties_it(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, log = f"cache-{uuid.uuid4().hex[:8]}", tmp_path / "calls.log"
    path = tmp_path / "flow.toml"
    path.write_text(
        f'[agent_flow]\nname = "{name}"\n[orchestration]\nmode = "sequential"\n'
        'sequential_agents = ["a", "b"]\n[cache]\n'
        f'path = "{(tmp_path / "cache.sqlite").as_posix()}"\n'
        '[agents.a]\nhandler = "tests.cache_agents:logged"\ncache = { ttl = "1h" }\n'
        '[agents.b]\nhandler = "tests.agents:noop"\ncache = { ttl = "1h" }\n'
    )
    config, queue = load_config(path, check_handlers=True), f"test-{uuid.uuid4().hex[:10]}"
    runner = Runner(config, client, queue)
    worker = WorkerProcess(path, queue, client.service_client.config.target_host,
                           tmp_path / "worker.log")  # fmt: skip
    data = {"n": 2, "log_file": str(log)}
    with worker:
        await _run(runner, data)
        worker.kill()  # SIGKILL: nothing in its memory survives
    with worker:  # a new worker process: still a hit
        _, after = await _run(runner, data)
        assert log.read_text().count("called") == 1 and after.results[0].cached
        code, out, _ = await cli(capsys, "cache", "clear", "--agent", "a", "--config", str(path))
        assert (code, out) == (0, "cleared 1 cached result(s) of agent 'a'\n")
        _, cleared = await _run(runner, data)
    assert log.read_text().count("called") == 2
    assert [r.cached for r in cleared.results] == [False, True]
    assert await clear_cache(config) == 2  # the whole flow: a's new result and b's
    assert SQLiteResults(tmp_path / "cache.sqlite").clear(name, None) == 0


async def test_an_llm_agent_hit_saves_its_tokens_in_the_usage_ledger(
    client: Client, fake: FakeLLM, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.reset()
    raw = {
        "agent_flow": {"name": f"cache-llm-{uuid.uuid4().hex[:6]}"},
        "llm": {"provider": "ollama", "model": "gemma3:1b", "base_url": fake.url("ollama")},
        "orchestration": {"mode": "sequential", "sequential_agents": ["writer"]},
        "agents": {"writer": {"system_prompt": "Write.", "cache": {"ttl": "1h"}}},
        "cache": {"path": str(cli_env / "cache.sqlite")},
    }
    config = parse_config(raw, base_dir=REPO, check_handlers=True)
    async with flow_runner(client, config) as runner:
        _, first = await _run(runner, {"message": "hi"})
        hit_id, second = await _run(runner, {"message": "hi"})
    assert len(fake.requests) == 1 and first.usage.total_tokens == 8
    assert second.results[0].cached and not second.usage  # it spent nothing
    assert second.state.data == first.state.data
    code, out, _ = await cli(capsys, "usage", hit_id, "--json")
    body = json.loads(out)
    assert code == 0 and body["cache"] == {"hits": 1, "saved": {
        "input_tokens": 5, "output_tokens": 3, "requests": 1, "tool_calls": 0,
        "total_tokens": 8}}  # fmt: skip
    code, out, _ = await cli(capsys, "usage", hit_id)
    assert "result cache: 1 hit(s) saved 8 tokens (5 in, 3 out), 1 model request(s)" in out


@pytest.mark.parametrize(
    ("cache", "says"),
    [
        ({"ttl": "1h", "size": 3}, "agents.a.cache.size: unknown key; allowed keys: ttl"),
        ({"ttl": "0s"}, "agents.a.cache.ttl: Input should be greater than 0"),
        ({"ttl": "-1m"}, "agents.a.cache.ttl: '-1m' is not a duration"),
        ({"ttl": "soon"}, "agents.a.cache.ttl: 'soon' is not a duration"),
        ({}, "agents.a.cache.ttl: required key is missing"),
    ],
)
def test_bad_cache_tables_fail_at_load(cache: dict[str, Any], says: str) -> None:
    raw = {"orchestration": {"mode": "sequential", "sequential_agents": ["a"]},
           "agents": {"a": {"handler": "tests.cache_agents:double", "cache": cache}}}  # fmt: skip
    with pytest.raises(ConfigError, match="^" + re.escape("agentflow.toml: " + says)):
        parse_config(raw)
