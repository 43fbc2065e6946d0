"""What a server knows: the flows of its ``--config`` files, the API keys, one Temporal client.

Nothing else: every answer is read from Temporal, so any number of servers can run side by
side behind a load balancer. The flows share one connection, so their ``[temporal]`` address
and namespace and their ``[security]`` and ``[payloads]`` tables must agree (checked at start).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from temporalio.client import Client

from agentflow.client.bus_registrations import registrations
from agentflow.client.connection import (
    connect_flow,
    connect_settings,
    shared_connection,
    ui_url,
    ui_url_at,
)
from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, load_config
from agentflow.models.bus import Registration
from agentflow.serve.auth import ApiKeys
from agentflow.serve.problems import Problem

__all__ = ["ServeContext", "load_context"]

# How long a read of the bus registry answers "is anyone subscribed to this topic?".
REGISTRY_SECONDS = 10.0


@dataclass
class ServeContext:
    """The flows (by name), the keys, whether ``--insecure-local`` is on, and the client."""

    configs: dict[str, FlowConfig]
    keys: ApiKeys
    insecure_local: bool = False
    max_body_bytes: int = 1024 * 1024
    # A client to share (tests, an app embedding the server); None: connect on first use.
    temporal_client: Client | None = field(default=None, repr=False)
    _lock: asyncio.Lock | None = field(default=None, init=False, repr=False)
    _runners: dict[str, Runner] = field(default_factory=dict, init=False, repr=False)
    _registry: tuple[float, dict[str, Registration]] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        shared_connection(list(self.configs.values()))

    @property
    def _first(self) -> FlowConfig | None:
        return next(iter(self.configs.values()), None)

    async def client(self) -> Client:
        """The one connection every request shares (made on first use; with the flows'
        ``[security]`` codec, so payloads read here are decrypted)."""
        if self.temporal_client is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self.temporal_client is None:
                    self.temporal_client = await connect_flow(self._first)
        return self.temporal_client

    def config(self, flow: str) -> FlowConfig:
        """The flow named ``flow``; a 404 problem for a flow this server was not given."""
        config = self.configs.get(flow)
        if config is None:
            known = ", ".join(sorted(self.configs)) or "none (start with --config FILE)"
            raise Problem(404, f"no flow {flow!r} on this server; flows: {known}")
        return config

    async def runner(self, flow: str) -> Runner:
        """The Runner of ``flow`` on the shared client."""
        runner = self._runners.get(flow)
        if runner is None:
            runner = Runner(self.config(flow), await self.client())
            self._runners[flow] = runner
        return runner

    async def registrations(self, *, fresh: bool = False) -> dict[str, Registration]:
        """The bus registry's flows (who subscribes to what), read at most every
        ``REGISTRY_SECONDS`` unless ``fresh``: a topic is refused only on a fresh read."""
        now = time.monotonic()
        if fresh or self._registry is None or now - self._registry[0] > REGISTRY_SECONDS:
            self._registry = (now, await registrations(await self.client()))
        return self._registry[1]

    def ui_link(self, workflow_id: str, run_id: str | None = None) -> str:
        """The Temporal UI page of a workflow (of one run), honouring ``[temporal] ui_url``."""
        first = self._first
        temporal = first.temporal if first else None
        base = temporal.ui_url if temporal else None
        if self.temporal_client is not None:
            return ui_url(self.temporal_client, workflow_id, run_id, base)
        settings = connect_settings(temporal)
        return ui_url_at(settings["target_host"], settings["namespace"], workflow_id, run_id,
                         base)  # fmt: skip


def load_context(
    paths: Sequence[str], keys: ApiKeys, insecure_local: bool = False,
    max_body_bytes: int = 1024 * 1024,
) -> ServeContext:  # fmt: skip
    """Load the ``--config`` files (ConfigError naming the file on a bad one)."""
    configs = [load_config(path, check_handlers=False) for path in paths]
    shared_connection(configs)
    return ServeContext({c.name: c for c in configs}, keys, insecure_local, max_body_bytes)
