"""A plain (not editable) install works outside the checkout: the wheel holds one top-level
package, `agentflow`, and `agentflow demo` run from an empty directory finds its flow, its
agents and its input inside that package."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from temporalio.client import Client

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout installed (without its dependencies, which the test's venv
    has) into a directory of its own."""
    wheels, target = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("site")
    # No build isolation: the venv's setuptools builds it, nothing is downloaded.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(wheels), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    [wheel] = wheels.glob("agentflow-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    return target


def _environment(site: Path) -> dict[str, str]:
    # The installed copy first; the venv's dependencies after it. Not the checkout.
    paths = [str(site), sysconfig.get_paths()["purelib"]]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONSAFEPATH": "1"}


def test_the_install_holds_one_name(installed: Path) -> None:
    tops = {path.name for path in installed.iterdir() if not path.name.endswith(".dist-info")}
    assert tops - {"bin"} == {"agentflow"}
    where = subprocess.run(
        [sys.executable, "-c", "import agentflow, agentflow.workflows.session as s; "
         "print(agentflow.__file__); print(s.__file__)"],
        env=_environment(installed), cwd=installed.parent, capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    assert all(path.startswith(str(installed)) for path in where), where


async def test_demo_runs_from_the_install_outside_the_checkout(
    installed: Path, client: Client, tmp_path: Path
) -> None:
    port = client.service_client.config.target_host.rpartition(":")[2]  # uses this server
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agentflow.cli", "demo", "--port", port,
        cwd=tmp_path, env=_environment(installed),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(demo.communicate(), timeout=120)
    shown = output.decode()
    assert demo.returncode == 0, shown
    assert "flow 'article-review' (mixed mode)" in shown
    assert "✓ publisher" in shown
    log = (tmp_path / ".agentflow" / "demo-worker.log").read_text()
    assert "agent publisher completed" in log


async def test_an_installed_worker_serves_llm_agents(
    installed: Path, client: Client, tmp_path: Path
) -> None:
    """A worker of a flow with LLM agents loads the LLM library at start: by its installed
    name (a missed rename once made `agentflow worker` fail here, outside the checkout)."""
    flow = tmp_path / "agentflow.toml"
    flow.write_text(
        '[agent_flow]\nname = "ask"\n[llm]\nprovider = "ollama"\nmodel = "m"\n'
        '[orchestration]\nmode = "sequential"\nsequential_agents = ["a"]\n'
        '[agents.a]\nsystem_prompt = "Answer."\n'
    )
    env = {**_environment(installed), "TEMPORAL_ADDRESS": client.service_client.config.target_host}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agentflow.cli", "worker", "--config", str(flow),
        "--task-queue", f"install-{os.getpid()}", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert worker.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("worker on task queue" in line for line in seen):
                line = (await worker.stdout.readline()).decode()
                assert line, "".join(seen)  # the worker exited before it served
                seen.append(line)
    finally:
        worker.terminate()
        await worker.wait()
