"""[runtime]'s worker settings: slots, pollers and the workflow cache, from the file to the
Temporal Worker (agentflow/config/runtime.py, agentflow/worker/rate_limits.py)."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum

from agentflow.client.runner import Runner
from agentflow.client.visibility import pollers
from agentflow.config import load_config
from agentflow.config.runtime import MAX_CACHED_WORKFLOWS, MAX_POLLERS, MAX_SLOTS
from agentflow.errors import ConfigError
from agentflow.worker.rate_limits import handler_threads, runtime_options
from agentflow.worker.serve import build_worker, serving

FLOW = """
[agent_flow]
name = "worker-settings"

[orchestration]
mode = "sequential"
sequential_agents = ["a"]

[agents.a]
handler = "tests.agents:append"
"""

SETTINGS = {
    "max_concurrent_activities": 7,
    "max_concurrent_local_activities": 8,
    "max_concurrent_workflow_tasks": 9,
    "workflow_task_pollers": 3,
    "activity_task_pollers": 4,
    "max_cached_workflows": 50,
}


def flow_file(tmp_path: Path, runtime: str) -> Path:
    path = tmp_path / "agentflow.toml"
    path.write_text(textwrap.dedent(FLOW) + "\n[runtime]\n" + textwrap.dedent(runtime))
    return path


def error(tmp_path: Path, runtime: str) -> str:
    """The ConfigError for ``runtime``: one line, naming the file and the [runtime] table."""
    path = flow_file(tmp_path, runtime)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{path}: runtime"), message
    assert "Traceback" not in message
    return message


def test_settings_become_the_workers_options(tmp_path: Path) -> None:
    lines = "".join(f"{key} = {value}\n" for key, value in SETTINGS.items())
    config = load_config(flow_file(tmp_path, lines))
    assert config.runtime.worker_options() == SETTINGS
    options = runtime_options([(config, tmp_path)], {})
    assert options.pop("workflow_task_poller_behavior") == PollerBehaviorSimpleMaximum(3)
    assert options.pop("activity_task_poller_behavior") == PollerBehaviorSimpleMaximum(4)
    assert options == {k: v for k, v in SETTINGS.items() if not k.endswith("_pollers")}
    # Options given in code win over the file's.
    assert (
        runtime_options([(config, tmp_path)], {"max_cached_workflows": 0})["max_cached_workflows"]
        == 0
    )


def test_unset_keys_keep_temporals_defaults(tmp_path: Path) -> None:
    config = load_config(flow_file(tmp_path, "timeout_seconds = 5\n"))
    assert runtime_options([(config, tmp_path)], {}) == {}
    assert handler_threads([(config, tmp_path)], 100) == 100


def test_max_concurrent_agents_sets_both_agent_slots(tmp_path: Path) -> None:
    config = load_config(flow_file(tmp_path, "max_concurrent_agents = 300\n"))
    assert runtime_options([(config, tmp_path)], {}) == {
        "max_concurrent_activities": 300,
        "max_concurrent_local_activities": 300,
    }
    # Sync handlers get a thread for every slot.
    assert handler_threads([(config, tmp_path)], 100) == 300


def test_flows_on_one_worker_take_the_smallest(tmp_path: Path) -> None:
    one = load_config(flow_file(tmp_path, "max_cached_workflows = 10\nworkflow_task_pollers = 8\n"))
    two = load_config(flow_file(tmp_path, "max_cached_workflows = 20\nactivity_task_pollers = 2\n"))
    options = runtime_options([(one, tmp_path), (two, tmp_path)], {})
    assert options == {
        "max_cached_workflows": 10,
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(8),
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(2),
    }


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        ("max_concurrent_activities = 0\n", "greater than or equal to 1"),
        (f"max_concurrent_activities = {MAX_SLOTS + 1}\n", f"less than or equal to {MAX_SLOTS}"),
        ("max_concurrent_local_activities = -3\n", "greater than or equal to 1"),
        ("max_concurrent_workflow_tasks = 2.5\n", "valid integer"),
        ('activity_task_pollers = "5"\n', "valid integer"),
        ("activity_task_pollers = 0\n", "greater than or equal to 1"),
        (f"workflow_task_pollers = {MAX_POLLERS + 1}\n", f"less than or equal to {MAX_POLLERS}"),
        ("max_cached_workflows = -1\n", "greater than or equal to 0"),
        # The Temporal core allocates the cache up front: 10**9 aborts the worker process.
        ("max_cached_workflows = 1_000_000_000\n", f"less than or equal to {MAX_CACHED_WORKFLOWS}"),
        ("workflow_task_pollers = 1\n", "at least 2 while the workflow cache is on"),
        ("max_concurrent_workflow_tasks = 1\n", "or max_cached_workflows = 0"),
        ("max_concurrent_agents = 4\nmax_concurrent_activities = 5\n", "set it, or them"),
        ("max_pollers = 4\n", "max_pollers"),
    ],
)
def test_bad_settings_are_one_line(tmp_path: Path, runtime: str, expected: str) -> None:
    assert expected in error(tmp_path, runtime)


def test_one_poller_and_one_task_slot_without_the_cache(tmp_path: Path) -> None:
    runtime = ("max_cached_workflows = 0\nworkflow_task_pollers = 1\n"
               "max_concurrent_workflow_tasks = 1\n")  # fmt: skip
    config = load_config(flow_file(tmp_path, runtime))
    assert config.runtime.worker_options() == {
        "max_cached_workflows": 0,
        "workflow_task_pollers": 1,
        "max_concurrent_workflow_tasks": 1,
    }


async def test_a_worker_runs_with_the_files_settings(client: Client, tmp_path: Path) -> None:
    """serving() (what `agentflow worker` and the in-process Runner run) builds its Worker
    with the file's settings, polls with them, and runs a flow."""
    lines = "".join(f"{key} = {value}\n" for key, value in SETTINGS.items())
    config = load_config(flow_file(tmp_path, lines))
    queue = f"test-settings-{uuid.uuid4().hex[:8]}"
    async with serving(client, [(config, tmp_path)], task_queue=queue) as worker:
        given = worker.config()
        for key in ("max_concurrent_activities", "max_concurrent_local_activities",
                    "max_concurrent_workflow_tasks", "max_cached_workflows"):  # fmt: skip
            assert given.get(key) == SETTINGS[key], key
        assert given.get("workflow_task_poller_behavior") == PollerBehaviorSimpleMaximum(3)
        assert given.get("activity_task_poller_behavior") == PollerBehaviorSimpleMaximum(4)
        result = await Runner(config, client, queue).run({})
        assert result.state.data["trail"] == ["a"]
        # The server sees this worker polling the queue (DescribeTaskQueue).
        identities = {poller.identity for poller in await pollers(client, queue)}
        assert given.get("identity") in identities


async def test_the_bounds_are_settings_temporal_takes(client: Client, tmp_path: Path) -> None:
    """The largest values the file allows, and the smallest, start a real Worker."""
    largest = (f"max_concurrent_activities = {MAX_SLOTS}\n"
               f"max_concurrent_local_activities = {MAX_SLOTS}\n"
               f"max_concurrent_workflow_tasks = {MAX_SLOTS}\n"
               f"workflow_task_pollers = {MAX_POLLERS}\nactivity_task_pollers = {MAX_POLLERS}\n"
               f"max_cached_workflows = {MAX_CACHED_WORKFLOWS}\n")  # fmt: skip
    smallest = ("max_concurrent_activities = 1\nmax_concurrent_local_activities = 1\n"
                "max_concurrent_workflow_tasks = 1\nworkflow_task_pollers = 1\n"
                "activity_task_pollers = 1\nmax_cached_workflows = 0\n")  # fmt: skip
    for runtime in (largest, smallest):
        config = load_config(flow_file(tmp_path, runtime))
        options = runtime_options([(config, tmp_path)], {})
        queue = f"test-bounds-{uuid.uuid4().hex[:8]}"
        async with build_worker(client, [(config, tmp_path)], task_queue=queue, **options):
            result = await Runner(config, client, queue).run({})
            assert result.state.data["trail"] == ["a"]
