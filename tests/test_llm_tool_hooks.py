"""``agent_error`` hooks of an LLM agent whose tool call fails for good: they run once, in the
last attempt of the ``run_tool`` activity, naming the agent and the tool; earlier attempts,
which Temporal retries, run none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from temporalio.client import Client

from agentflow.models.flow import CallbackArgs, FlowFailedError
from tests.conftest import flow_runner
from tests.llm_server import Calls, FakeLLM, running_fake
from tests.test_llm_tools import tool_flow

HERE = "tests.test_llm_tool_hooks"
CALLED: list[CallbackArgs] = []


def broken(city: str) -> str:
    """A tool whose backend is down: every call raises."""
    raise ConnectionError(f"weather service down for {city}")


def on_error(args: CallbackArgs) -> None:
    CALLED.append(args)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    yield from running_fake()


async def test_a_tool_that_fails_for_good_runs_agent_error_hooks_once(
    client: Client, fake: FakeLLM
) -> None:
    agent = {"tools": [f"{HERE}:broken"]}
    config = tool_flow(fake.url("ollama"), agent, hooks={"agent_error": [f"{HERE}:on_error"]})
    fake.script = [Calls([("broken", {"city": "Oslo"})])]
    CALLED.clear()
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as failed:
            await runner.run({"message": "weather in Oslo?"})
    assert failed.value.result.results[-1].agent == "solver"
    # Three attempts (retry_attempts = 2 retries): the hook ran in the last one only.
    [args] = CALLED
    assert (args.hook, args.agent, args.attempt, args.error_type) == (
        "agent_error", "solver", 3, "ConnectionError"
    )  # fmt: skip
    assert args.error == (
        "agent 'solver': tool 'broken' raised ConnectionError: weather service down for Oslo"
    )
    assert args.state.data["message"] == "weather in Oslo?"
