"""10,000 loop iterations: the run continues-as-new, and every history stays bounded."""

from __future__ import annotations

from temporalio.client import Client

from agentflow.inspect.trace.read import run_histories
from agentflow.workflows.loop import ITERATIONS_PER_RUN
from tests.conftest import flow_config, flow_runner


async def test_ten_thousand_iterations_with_bounded_history(client: Client) -> None:
    config = flow_config("loop", {"count": "tests.agents:counter"}, loop_agent="count",
                         max_iterations=10_000, timeout_seconds=1800)  # fmt: skip
    async with flow_runner(client, config, max_concurrent_activities=50) as runner:
        handle = await runner.start({})
        result = await handle.result()
    assert (result.iterations, result.stop_reason) == (10_000, "max_iterations")
    assert result.state.data["count"] == 10_000
    assert len(result.results) == 100  # a window of recent results, not all 10,000

    sizes = [len(events) async for _, events in run_histories(client, handle.workflow_id)]
    assert len(sizes) == 10_000 // ITERATIONS_PER_RUN
    assert max(sizes) < 10_000
