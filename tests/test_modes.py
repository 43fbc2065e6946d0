"""Each orchestration mode's semantics against a real Temporal dev server."""

from __future__ import annotations

from temporalio.client import Client

from tests.conftest import flow_config, flow_runner


async def test_sequential_passes_each_output_to_the_next(client: Client) -> None:
    config = flow_config(
        "sequential",
        {"a": "tests.agents:append", "b": "tests.agents:async_append", "c": "tests.agents:append"},
        sequential_agents=["a", "b", "c"],
    )
    async with flow_runner(client, config) as runner:
        result = await runner.run({"trail": []})
    assert result.status == "completed"
    assert result.state.data["trail"] == ["a", "b", "c"]
    assert [r.agent for r in result.results] == ["a", "b", "c"]
    assert all(r.status == "completed" and r.attempt == 1 for r in result.results)
    assert result.results[0].changed_keys == ["trail"]
