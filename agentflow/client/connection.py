"""Connecting to Temporal: the settings, the data converter, and a run's page in the UI.

Connection settings come from Temporal's own client configuration (``TEMPORAL_ADDRESS``,
``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, TLS settings, profiles in the Temporal config
file); a ``[temporal]`` table in agentflow.toml overrides them. The data converter is
pydantic's, plus the ``[security]`` codec and the ``[payloads]`` store when configured (the
filesystem store by default on the embedded dev server): one converter for client, worker and
Replayer alike.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import gc
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfigProfile

from agentflow.client.codec import EncryptionCodec, find_keys, load_keys
from agentflow.client.payloads import default_storage, with_storage
from agentflow.config import FlowConfig, PayloadsConfig, SecurityConfig, TemporalConfig
from agentflow.errors import AgentflowError, ConfigError

DEFAULT_ADDRESS = "localhost:7233"


@functools.cache  # once per process
def _collect_before_exit() -> None:
    """Free unreachable clients while the interpreter still runs, not while it finalises.

    A ``Client`` sits in reference cycles, so a script's last client is freed by the garbage
    collector that CPython runs while finalising. Its Rust side then needs the GIL from a
    runtime thread that finalisation no longer lets in, and about one short-lived client
    process in twenty dies at exit with SIGSEGV or "PyGILState_Release" (temporalio/sdk-python
    issue 300) after its work is done. Collecting at ``atexit`` frees them first.
    """
    atexit.register(gc.collect)


def connect_settings(temporal: TemporalConfig | None = None) -> dict[str, Any]:
    """Temporal's standard settings (env and config file), then the ``[temporal]`` table."""
    temporal = temporal or TemporalConfig()
    try:
        profile = ClientConfigProfile.load(profile=temporal.profile)
    except Exception as err:  # the SDK's bridge ConfigError is not a public type
        raise ConfigError(
            f"Temporal client settings: {err} (see [temporal] profile, TEMPORAL_PROFILE, "
            "TEMPORAL_CONFIG_FILE)"
        ) from None
    settings: dict[str, Any] = dict(profile.to_client_connect_config())
    if temporal.address:
        settings["target_host"] = temporal.address
    if temporal.namespace:
        settings["namespace"] = temporal.namespace
    if temporal.tls is not None:
        settings["tls"] = temporal.tls
    settings.setdefault("target_host", DEFAULT_ADDRESS)
    settings.setdefault("namespace", "default")
    return settings


async def data_converter(
    security: SecurityConfig | None = None, payloads: PayloadsConfig | None = None
) -> DataConverter:
    """pydantic's converter, encrypting when ``security.encrypt``, storing big payloads when
    ``payloads`` is set (encryption first: stored blobs are sealed too)."""
    security = security or SecurityConfig()
    if security.encrypt:
        converter = dataclasses.replace(
            pydantic_data_converter,
            payload_codec=EncryptionCodec(load_keys(security), seal=True),
            # Failure messages and stack traces travel as an encrypted payload too: they often
            # quote the data that made an agent fail.
            failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
        )
    else:  # not sealing, but able to read runs sealed before (or say which key is missing)
        codec = EncryptionCodec(find_keys(security), seal=False)
        converter = dataclasses.replace(pydantic_data_converter, payload_codec=codec)
    return await with_storage(converter, payloads)


async def connect(
    temporal: TemporalConfig | None = None,
    interceptors: Sequence[Any] = (),
    *,
    converter: DataConverter | None = None,
) -> Client:
    """Connect a client with agentflow's data converter (``converter``, else pydantic's).

    Workers add AgentflowPlugin themselves; putting it on the client too would make every
    worker built from this client register the workflows twice.
    """
    settings = connect_settings(temporal)
    _collect_before_exit()
    try:
        return await Client.connect(
            **settings,
            data_converter=converter or pydantic_data_converter,
            interceptors=interceptors,
        )
    except RuntimeError as err:
        reason = "connection refused" if "ConnectionRefused" in str(err) else str(err)
        raise AgentflowError(
            f"cannot connect to Temporal at {settings['target_host']}: {reason} "
            "(start a server with `agentflow dev`, or set TEMPORAL_ADDRESS / [temporal] address)"
        ) from None


async def connect_flow(config: FlowConfig | None, interceptors: Sequence[Any] = ()) -> Client:
    """Connect with a flow's ``[temporal]``, ``[security]`` and ``[payloads]`` tables (None:
    Temporal's own settings, no encryption).

    Without a ``[payloads]`` table, large payloads go to the filesystem store when the server
    is the embedded dev server (agentflow/payloads.py ``default_storage``). Every worker,
    client and Replayer of a flow connects through here, so they decide alike.
    """
    payloads = config.payloads if config else None
    converter = await data_converter(config.security if config else None, payloads)
    client = await connect(config.temporal if config else None, interceptors,
                           converter=converter)  # fmt: skip
    stored = await default_storage(converter, payloads, client)
    if stored is None:
        return client
    settings = client.config()  # the same connection, with the store in its converter
    settings["data_converter"] = stored
    return Client(**settings)


def ui_url(
    client: Client, workflow_id: str, run_id: str | None = None, base: str | None = None
) -> str:
    """The Temporal UI page of a run. ``base`` is the UI's address (``[temporal] ui_url``);
    without it: Temporal Cloud's UI for a Cloud address, else a dev server's, whose UI listens
    on the gRPC port + 1000 (``temporal server start-dev`` and ``agentflow dev`` defaults)."""
    target_host = client.service_client.config.target_host
    return ui_url_at(target_host, client.namespace, workflow_id, run_id, base)


def ui_url_at(
    target_host: str,
    namespace: str,
    workflow_id: str,
    run_id: str | None = None,
    base: str | None = None,
) -> str:
    """``ui_url`` from a server address and namespace (``connect_settings``), not a client."""
    if base is None:
        host, _, port = target_host.rpartition(":")
        host = host or "localhost"
        if host.endswith(".tmprl.cloud"):
            base = "https://cloud.temporal.io"
        else:
            base = f"http://{host}:{int(port) + 1000 if port.isdigit() else 8233}"
    path = f"{base.rstrip('/')}/namespaces/{quote(namespace)}/workflows/{quote(workflow_id)}"
    return f"{path}/{run_id}/history" if run_id else path


def shared_connection(configs: Sequence[FlowConfig]) -> None:
    """ConfigError unless the flows can share one connection and one data converter: the same
    server and namespace, the same ``[security]`` codec and the same ``[payloads]`` store (a
    worker or `agentflow serve` of several files connects once, with the first file's)."""
    names: set[str] = set()
    for config in configs:
        if config.name in names:
            raise ConfigError(f"--config: two files define flow {config.name!r}")
        names.add(config.name)
    if not configs:
        return
    first = configs[0]
    for config in configs[1:]:
        for table in ("temporal", "security", "payloads"):
            mine, theirs = getattr(first, table), getattr(config, table)
            if table == "temporal":  # each flow keeps its own task queue
                mine = mine.model_copy(update={"task_queue": None})
                theirs = theirs.model_copy(update={"task_queue": None})
            if mine != theirs:
                raise ConfigError(
                    f"--config: flows {first.name!r} and {config.name!r} differ in [{table}]; "
                    "one process shares one connection (its server, codec and payload store), "
                    "so run them in separate processes"
                )
