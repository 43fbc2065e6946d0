"""Long loops continue-as-new, and every history stays bounded: 10,000 iterations of a local
agent, and 1,000 of an agent run as an activity (two runs: the hand-over with activities)."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from agentflow.inspect.trace.read import run_histories
from agentflow.workflows.loop import ITERATIONS_PER_RUN
from tests.conftest import flow_config, flow_runner


# 10,000 activities took ~245 s of the suite's time; local agents cover the same hand-overs in
# a quarter of it, and the activity path crosses the run boundary at 1,000.
@pytest.mark.parametrize(("iterations", "local"), [(10_000, True), (1_000, False)])
async def test_a_long_loop_continues_as_new_with_bounded_history(
    client: Client, iterations: int, local: bool
) -> None:
    config = flow_config("loop", {"count": "tests.agents:counter"}, loop_agent="count",
                         max_iterations=iterations, timeout_seconds=1800,
                         local_agents=local)  # fmt: skip
    async with flow_runner(client, config, max_concurrent_activities=50) as runner:
        handle = await runner.start({})
        result = await handle.result()
    assert (result.iterations, result.stop_reason) == (iterations, "max_iterations")
    assert result.state.data["count"] == iterations
    assert len(result.results) == 100  # a window of recent results, not all of them

    sizes = [len(events) async for _, events in run_histories(client, handle.workflow_id)]
    assert len(sizes) == iterations // ITERATIONS_PER_RUN
    assert max(sizes) < 10_000
