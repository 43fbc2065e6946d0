"""Large payloads outside Temporal: the SDK's ``ExternalStorage`` with agentflow's drivers.

With a ``[payloads]`` table, every payload of at least ``threshold_bytes`` (after encryption,
when ``[security]`` encrypts: stored blobs are sealed like everything else) is written to a
store, and history keeps a reference of about 200 bytes naming the driver and the blob. So a
10 MB state or input no longer meets Temporal's 2 MB payload and 4 MB message limits.

Drivers: ``filesystem`` (here; for one machine, or a directory that every worker and client
mounts), and the SDK's own ``s3`` (``temporalio.contrib.aws.s3driver``) and ``gcs``
(``temporalio.contrib.gcp.gcsdriver``) for clusters: ``pip install 'agentflow[s3]'`` / ``[gcs]``.

Without a ``[payloads]`` table, the filesystem store is on by default when the flow talks to
the embedded dev server (``agentflow dev``, ``make demo``: a SQLite-backed Temporal on a
loopback address), where every client and worker shares this machine's disk; a cluster keeps
it opt-in, since its workers may not see that disk. ``storage = "none"`` turns it off.

Blobs are content-addressed (SHA-256 of the stored bytes), so the same state handed to five
agents is written once. Temporal does not tell a driver when a run is deleted: blobs outlive
their runs until removed by age (README, "Large payloads").
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from temporalio.api.common.v1 import Payload
from temporalio.api.workflowservice.v1 import GetClusterInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DataConverter,
    ExternalStorage,
    SerializationContext,
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)
from temporalio.service import RPCError

from agentflow.config import PayloadsConfig
from agentflow.errors import AgentflowError, ConfigError

FILESYSTEM_DRIVER = "agentflow.filesystem"
# A server on one of these is on this machine, as is the disk of its clients and workers.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class PayloadStoreError(AgentflowError):
    """A stored payload that cannot be written or read back."""


@dataclass(frozen=True)
class AgentflowStorage(ExternalStorage):
    """``ExternalStorage`` that also knows the largest payload its store takes."""

    max_bytes: int = 100 * 1024 * 1024


class FileSystemDriver(StorageDriver):
    """Blobs as files ``<root>/<sha256[:2]>/<sha256>``, each a serialised ``Payload``."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def name(self) -> str:
        return FILESYSTEM_DRIVER

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        return [await asyncio.to_thread(self._write, payload) for payload in payloads]

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        return [await asyncio.to_thread(self._read, claim) for claim in claims]

    def _write(self, payload: Payload) -> StorageDriverClaim:
        data = payload.SerializeToString()
        if len(data) > self.max_bytes:
            raise PayloadStoreError(
                f"payload of {len(data) / 1e6:.1f} MB is over [payloads] max_bytes "
                f"({self.max_bytes / 1e6:.1f} MB)"
            )
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            # Written before (same bytes): refresh its age so a sweep by age keeps it.
            os.utime(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write aside, then rename: a reader never sees half a blob.
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
                tmp.write(data)
            os.replace(tmp.name, path)
        return StorageDriverClaim({"sha256": digest})

    def _read(self, claim: StorageDriverClaim) -> Payload:
        digest = claim.claim_data.get("sha256", "")
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise PayloadStoreError(
                f"stored payload {digest[:12]}… is missing from {self.root} (deleted, or this "
                "process uses another [payloads] path than the one that wrote it)"
            ) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise PayloadStoreError(f"stored payload {path} does not match its checksum")
        return Payload.FromString(data)

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(ch in "0123456789abcdef" for ch in digest):
            raise PayloadStoreError(f"not a payload reference: {digest[:70]!r}")
        return self.root / digest[:2] / digest


async def external_storage(config: PayloadsConfig) -> AgentflowStorage:
    """The SDK's external storage with the driver ``config`` names (cloud clients are opened
    here, once, and stay open for the life of the process, as the SDK's drivers expect)."""
    driver: StorageDriver
    if config.storage == "filesystem":
        driver = FileSystemDriver(Path(config.path).absolute(), config.max_bytes)
    elif config.storage == "s3":
        driver = await _s3_driver(config)
    elif config.storage == "gcs":
        driver = await _gcs_driver(config)
    else:
        raise ConfigError('[payloads] storage = "none" has no store')
    return AgentflowStorage(
        drivers=[driver], payload_size_threshold=config.threshold_bytes, max_bytes=config.max_bytes
    )


def stored_payload_limit(converter: DataConverter) -> int | None:
    """The largest payload that ``converter`` can carry through its store; None: no store."""
    storage = converter.external_storage
    if storage is None:
        return None
    return storage.max_bytes if isinstance(storage, AgentflowStorage) else None


def _optional(module: str, storage: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f'[payloads] storage = "{storage}" needs the SDK\'s {storage} driver packages: '
            f"pip install 'agentflow[{storage}]'"
        ) from None


async def _s3_driver(config: PayloadsConfig) -> StorageDriver:
    aioboto3 = _optional("aioboto3", "s3")
    s3 = _optional("temporalio.contrib.aws.s3driver", "s3")
    adapter = _optional("temporalio.contrib.aws.s3driver.aioboto3", "s3")
    session = aioboto3.Session(region_name=config.region)
    client = await session.client("s3", endpoint_url=config.endpoint_url).__aenter__()
    driver: StorageDriver = s3.S3StorageDriver(
        adapter.new_aioboto3_client(client), config.bucket, max_payload_size=config.max_bytes
    )
    return driver


async def _gcs_driver(config: PayloadsConfig) -> StorageDriver:
    storage = _optional("gcloud.aio.storage", "gcs")
    gcs = _optional("temporalio.contrib.gcp.gcsdriver", "gcs")
    adapter = _optional("temporalio.contrib.gcp.gcsdriver.gcloud_aio", "gcs")
    driver: StorageDriver = gcs.GCSStorageDriver(
        adapter.new_gcloud_aio_client(storage.Storage()), config.bucket,
        max_payload_size=config.max_bytes,
    )  # fmt: skip
    return driver


def on_this_machine(target_host: str) -> bool:
    """Whether a ``host:port`` address is a loopback one."""
    return target_host.rpartition(":")[0].lower() in LOOPBACK_HOSTS


async def embedded_dev_server(client: Client) -> bool:
    """Whether ``client`` talks to a dev server on this machine (``temporal server start-dev``,
    as ``agentflow dev`` and ``make demo`` start it: loopback address, SQLite persistence).

    Why both: a loopback address alone may be a port-forward to a cluster whose workers
    cannot read this machine's disk; SQLite alone may be a dev server on another machine.
    """
    if not on_this_machine(client.service_client.config.target_host):
        return False
    try:
        info = await client.workflow_service.get_cluster_info(
            GetClusterInfoRequest(), timeout=timedelta(seconds=5)
        )
    except RPCError:  # not allowed to ask, or not answering: not the dev server we know
        return False
    return info.persistence_store == "sqlite"


async def default_storage(
    converter: DataConverter, config: PayloadsConfig | None, client: Client
) -> DataConverter | None:
    """The converter with the default filesystem store, when ``config`` (the ``[payloads]``
    table) is absent and ``client`` talks to the embedded dev server; else None."""
    if config is not None or not await embedded_dev_server(client):
        return None
    return await with_storage(converter, PayloadsConfig())


async def with_storage(converter: DataConverter, config: PayloadsConfig | None) -> DataConverter:
    """``converter`` with ``config``'s external storage (none when there is none), and
    pydantic's payload converter built once (``SharedPydanticPayloadConverter``)."""
    converter = shared_payload_converter(converter)
    if config is None or config.storage == "none":
        return converter
    return dataclasses.replace(converter, external_storage=await external_storage(config))


class SharedPydanticPayloadConverter(PydanticPayloadConverter):
    """Pydantic's payload converter, built once per process and shared.

    The SDK builds a ``DataConverter``, and with it a new payload converter, for each payload
    context of every workflow activation (twice per activation at least), and pydantic's builds
    a JSON serializer and an empty cache of type adapters each time: 10 % of the CPU a worker
    spends on activations in bench/RESULTS.md's profile. It holds no state but that cache, so
    one instance serves them all, and its type adapters are built once.
    """

    _shared: ClassVar[SharedPydanticPayloadConverter | None] = None

    def __new__(cls) -> SharedPydanticPayloadConverter:
        if cls._shared is None:
            shared = super().__new__(cls)
            PydanticPayloadConverter.__init__(shared)
            cls._shared = shared
        return cls._shared

    def __init__(self) -> None:
        """Built in ``__new__``, once."""

    def with_context(self, context: SerializationContext) -> SharedPydanticPayloadConverter:
        # Pydantic's converters take no context; were one to, it gets an instance of its own
        # rather than changing the shared one (CompositePayloadConverter would).
        converters = self.get_converters_with_context(context)
        if converters is None:
            return self
        own = PydanticPayloadConverter()
        own._set_converters(*converters)
        return own  # type: ignore[return-value]


def shared_payload_converter(converter: DataConverter) -> DataConverter:
    """``converter`` with ``SharedPydanticPayloadConverter`` if it uses pydantic's own."""
    if converter.payload_converter_class is not PydanticPayloadConverter:
        return converter
    return dataclasses.replace(converter, payload_converter_class=SharedPydanticPayloadConverter)
