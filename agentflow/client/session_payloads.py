"""The payloads ``emit`` sends to a session, encoded once per event and once per config.

An event used to carry its whole flow config, encoded twice (once to check its size, once by
the data converter), into the session and its history. Now the config is encoded once per
config (``encoded_config``, cached per ``FlowConfig`` object) and travels in the session's
start input, which update-with-start only uses when it starts the session; the event names it
by its key (``EmitByKey``). A session run that does not have the key says so ("unknown",
``CONFIG_UNKNOWN``), and ``emit`` sends the config with the event (``EmitRequest``), as before.
The config is cached per object: a Runner's config is pinned, not edited between emits. A
signal (``emit`` without ``wait``) cannot be answered, so the first one a process sends to a
session carries the config (spliced from the cached encoding); later ones name it by key
(``emit_by_key``) once ``mark_config_sent`` has recorded that this session got it. A session keeps
the configs it was sent across continue-as-new (the most recent few), and a run it starts
has the config in its start input, so only a reset run, or one sent more configs than it
keeps, lacks it: it dead-letters such an event ("config unknown") for a redrive, which always
sends the config.

The payloads are JSON built by pydantic, as the pydantic data converter would build them,
handed to the converter as ``RawValue``: the converter passes them through, and the client's
codec (``[security]`` encryption) and payload store (``[payloads]``) still apply to them.
A client whose converter is not pydantic's gets the models themselves, encoded by its own.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.common import RawValue
from temporalio.contrib.pydantic import PydanticPayloadConverter

from agentflow.client.recent import RecentKeys
from agentflow.config import FlowConfig
from agentflow.errors import ConfigError
from agentflow.models.flow import Event
from agentflow.models.session import EmitByKey, EmitRequest, SessionState, config_key_of

# Temporal limits one payload to 2 MB; leave room for the rest of the request.
MAX_EMIT_BYTES = 2 * 1024 * 1024 - 128 * 1024
_CACHED_CONFIGS = 32  # configs a process emits with: usually one per Runner
_JSON = {"encoding": b"json/plain"}


@dataclass(frozen=True)
class EncodedConfig:
    """A config, its JSON and its key (what a session keeps it under)."""

    config: FlowConfig
    data: bytes
    key: str


_encoded: OrderedDict[int, EncodedConfig] = OrderedDict()
_lock = threading.Lock()


def encoded_config(config: FlowConfig) -> EncodedConfig:
    """``config`` encoded, cached per object: a config is pinned once a Runner has it."""
    with _lock:  # handlers that emit may run in threads (activities/emit.py)
        hit = _encoded.get(id(config))
        if hit is not None and hit.config is config:
            _encoded.move_to_end(id(config))
            return hit
    data = config.model_dump_json().encode()
    encoded = EncodedConfig(config, data, config_key_of(data))
    with _lock:
        _encoded[id(config)] = encoded
        while len(_encoded) > _CACHED_CONFIGS:
            _encoded.popitem(last=False)
    return encoded


# (namespace, session, config key) this process had recorded in a signal with the config.
_sent: RecentKeys[tuple[str, str, str]] = RecentKeys(4096)


def config_sent(client: Client, workflow_id: str, key: str) -> bool:
    """Whether this process has sent session ``workflow_id`` the config ``key`` (a signal
    with it was recorded: ``mark_config_sent``)."""
    return (client.namespace, workflow_id, key) in _sent


def mark_config_sent(client: Client, workflow_id: str, key: str) -> None:
    _sent.add((client.namespace, workflow_id, key))


@dataclass
class EncodedEvent:
    """An event to emit with its config: the size check, done once, and both payloads."""

    config: EncodedConfig
    event: Event
    redrive_of: str | None
    event_data: bytes

    def full(self, client: Client) -> Any:
        """The ``EmitRequest`` (config and event) for the ``emit`` signal or Update."""
        if not _pydantic(client):
            return EmitRequest(config=self.config.config, event=self.event,
                               redrive_of=self.redrive_of)  # fmt: skip
        data = b'{"config":%b,"event":%b,"redrive_of":%b}' % (
            self.config.data,
            self.event_data,
            json.dumps(self.redrive_of).encode(),
        )
        return RawValue(Payload(metadata=_JSON, data=data))

    def by_key(self, client: Client) -> Any:
        """The ``EmitByKey`` (the event, its config named by key)."""
        request = EmitByKey(config_key=self.config.key, event=self.event,
                            redrive_of=self.redrive_of)  # fmt: skip
        if not _pydantic(client):
            return request
        return RawValue(Payload(metadata=_JSON, data=request.model_dump_json().encode()))


def encoded_event(
    config: FlowConfig, event: Event, where: str = "--input", redrive_of: str | None = None
) -> EncodedEvent:
    """``event`` ready to emit; ConfigError (naming ``where``) when it would not fit in a
    Temporal payload with its config."""
    encoded = encoded_config(config)
    event_data = event.model_dump_json().encode()
    size = len(encoded.data) + len(event_data) + 40  # 40: the rest of an EmitRequest
    if size > MAX_EMIT_BYTES:
        raise ConfigError(
            f"{where}: the event is {size / 1e6:.1f} MB with its config; Temporal payloads are "
            "limited to 2 MB, so keep large data outside the event and pass a reference"
        )
    return EncodedEvent(encoded, event, redrive_of, event_data)


def start_input(client: Client, start: SessionState, config: EncodedConfig) -> Any:
    """The session's start input with ``config`` among its configs (for ``EmitByKey``)."""
    if not _pydantic(client):
        return start.model_copy(update={"configs": {**start.configs, config.key: config.config}})
    if start.configs:  # a reopened session's (none today): encode them all, once
        return RawValue(Payload(metadata=_JSON, data=_with_configs(start, config)))
    small = start.model_dump_json(exclude={"configs"}).encode()
    data = b'%b,"configs":{"%b":%b}}' % (small[:-1], config.key.encode(), config.data)
    return RawValue(Payload(metadata=_JSON, data=data))


def _with_configs(start: SessionState, config: EncodedConfig) -> bytes:
    configs = {**start.configs, config.key: config.config}
    return start.model_copy(update={"configs": configs}).model_dump_json().encode()


def _pydantic(client: Client) -> bool:
    """Whether the client's payloads are pydantic's JSON (what ``RawValue`` payloads hold)."""
    kind = client.data_converter.payload_converter_class
    return isinstance(kind, type) and issubclass(kind, PydanticPayloadConverter)


def as_model(value: Any, model: type[BaseModel]) -> BaseModel:
    """A payload built here, read back (tests: what the session will decode)."""
    if isinstance(value, RawValue):
        return model.model_validate_json(value.payload.data)
    return model.model_validate(value)
