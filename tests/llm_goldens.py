"""The golden histories of an LLM agent's durable tool loop (workflows/_llm_loop.py): a model
step that asks for two Python tools, both ``run_tool`` activities, and the model step that
answers (``llm-tools``); and ``llm-held``, one tool, whose answer's tokens came with the
activity's result (activities/tokens.py, ``hold``) instead of a signal. Recorded by
``python -m tests.record_histories llm-tools llm-held`` against the local fake LLM server
(tests/llm_server.py); replayed by tests/test_replay.py like every golden."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHistory

from agentflow.client.runner import Runner
from agentflow.config import parse_config
from tests.conftest import REPO, running_worker
from tests.llm_server import Calls, FakeLLM

LLM_GOLDENS = ("llm-tools", "llm-held")


async def record_llm_goldens(client: Client, prefix: str = "golden") -> dict[str, WorkflowHistory]:
    with FakeLLM() as fake:
        config = parse_config({
            "agent_flow": {"name": "llm-tools"},
            "llm": {"provider": "ollama", "model": "gemma3:1b", "base_url": fake.url("ollama")},
            "orchestration": {"mode": "sequential", "sequential_agents": ["solver"]},
            "agents": {"solver": {"system_prompt": "Solve.",
                                  "tools": ["tests.llm_tools:add", "tests.llm_tools:shout"]}},
        }, base_dir=REPO, check_handlers=True)  # fmt: skip
        fake.script = [Calls([("add", {"a": 2, "b": 3}), ("shout", {"text": "hi"})])]
        async with running_worker(client, config) as task_queue:
            handle = await Runner(config, client, task_queue).start(
                {"message": "add 2 and 3"}, workflow_id=f"{prefix}-llm-tools"
            )
            await handle.result()
            recorded = {"llm-tools": await handle.handle.fetch_history()}
            fake.script = [Calls([("add", {"a": 2, "b": 3})])]
            held = await Runner(config, client, task_queue).start(
                {"message": "add 2 and 3"}, workflow_id=f"{prefix}-llm-held"
            )
            await held.result()
            recorded["llm-held"] = await held.handle.fetch_history()
            return recorded
