"""AgenticGoKit's own TOML-agent files (tests/agk_files/) run end to end: their LLM agents
ask the local fake server (tests/llm_server.py) through the providers they declare."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from temporalio.client import Client

from agentflow.client.runner import Runner
from tests.conftest import running_worker
from tests.llm_server import FakeLLM, running_fake
from tests.test_agk_files import FLOW_FILES, agk_config


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


async def test_agenticgokit_flow_files_run(
    client: Client, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-agk-test")  # researchAgent's ${OPENAI_API_KEY}
    configs = {name: agk_config(name, fake.url("openai")) for name in FLOW_FILES}
    async with running_worker(client, *configs.values()) as task_queue:
        for name, config in configs.items():
            fake.reset()
            result = await Runner(config, client, task_queue).run({"message": f"hi {name}"})
            agents = config.enabled_agents()
            assert result.status == "completed", name
            assert sorted(r.agent for r in result.results) == sorted(agents), name
            for agent in agents:  # each agent's reply, from its own system prompt
                prompt = config.agents[agent].system_prompt
                assert str(result.state.data[agent]).startswith(prompt), (name, agent)
            assert len(fake.requests) == len(agents), name
            assert result.usage is not None and result.usage.requests == len(agents), name
            expected = "gpt-4" if name.startswith("research") else "smollm2:latest"
            assert {r["model"] for r in fake.requests} >= {expected}, name
    # gpt-4 is deprecated by OpenAI: the worker says so once per agent, and the agent runs.
    deprecated = [r.getMessage() for r in caplog.records
                  if r.name == "agentflow.llm" and "deprecated" in r.getMessage()]  # fmt: skip
    assert deprecated and all("model 'gpt-4' (openai)" in line for line in deprecated)
    assert all("It recommends" in line for line in deprecated)
    assert len(deprecated) == len(set(deprecated))
