"""AES-256-GCM payload encryption: a Temporal ``PayloadCodec`` and the keys it uses.

Every payload the SDK sends (workflow input, activity input and output, signals, updates,
queries, results, failure details, memo, summaries) is replaced by one whose data is the
original payload, serialised and sealed with AES-256-GCM; the metadata keeps only the encoding
``binary/encrypted`` and the id of the key. The server, its UI and anyone reading history see
neither the values nor their types.

Keys come from the environment or a key file, never from agentflow.toml or workflow input: a
list of ``id=base64`` entries (32 random bytes each), the newest last. New payloads are sealed
with the newest key; a payload is opened with whichever listed key its id names, so keys rotate
by appending a new one and dropping an old one only after no run needs it. Payloads that are
not encrypted pass through on decode, so turning encryption on does not break older runs.

Cost: one AES-GCM pass per payload (hundreds of MB/s on one core), plus 28 bytes per payload.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import DataConverter, PayloadCodec

from agentflow.config import SecurityConfig
from agentflow.errors import AgentflowError, ConfigError

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
CIPHER = "encryption-cipher"
CIPHER_NAME = b"AES-256-GCM"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


class DecryptionError(AgentflowError):
    """A payload that these keys cannot open (unknown key id, or tampered/corrupt data)."""


@dataclass(frozen=True)
class KeyRing:
    """Keys by id, in the order listed; the last one seals new payloads."""

    keys: Mapping[str, bytes]
    source: str

    @property
    def newest(self) -> str:
        return list(self.keys)[-1]


def parse_keys(text: str, source: str) -> dict[str, bytes]:
    """AES-256 keys: ``id=base64`` entries of 32 bytes each."""

    def aes(key_id: str, key: bytes) -> str | None:
        return None if len(key) == KEY_BYTES else (
            f"key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
        )  # fmt: skip

    return parse_key_entries(text, source, "key", aes)


def parse_key_entries(
    text: str, source: str, what: str, wrong_size: Callable[[str, bytes], str | None]
) -> dict[str, bytes]:
    """``id=base64`` entries separated by commas, spaces or lines; ``#`` starts a comment
    (encryption keys here, signing keys in client/signing.py). ``wrong_size`` says what is
    wrong with a key's length, or None."""
    keys: dict[str, bytes] = {}
    for line in text.splitlines():
        for entry in line.split("#", 1)[0].replace(",", " ").split():
            key_id, sep, encoded = entry.partition("=")
            if not sep or not _KEY_ID_PATTERN.fullmatch(key_id):
                raise ConfigError(
                    f"{source}: bad {what} entry {key_id[:20]!r}...; each key is ID=BASE64 with "
                    "an id of letters, digits, '.', '_' or '-'"
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise ConfigError(f"{source}: {what} {key_id!r} is not valid base64") from None
            problem = wrong_size(key_id, key)
            if problem is not None:
                raise ConfigError(f"{source}: {problem}")
            if key_id in keys:
                raise ConfigError(f"{source}: {what} id {key_id!r} is listed twice")
            keys[key_id] = key
    return keys


def load_keys(security: SecurityConfig, environ: Mapping[str, str] | None = None) -> KeyRing:
    """The key file's keys, then the environment's (newest last); ConfigError if none."""
    ring = find_keys(security, environ)
    if ring is None:
        raise ConfigError(
            f"no encryption keys were found: set {security.keys_env} (or [security] key_file) "
            "to ID=BASE64 entries of 32 random bytes; see README, Security"
        )
    return ring


def find_keys(security: SecurityConfig, environ: Mapping[str, str] | None = None) -> KeyRing | None:
    """The keys, if any are configured (a process that only reads old runs may have some)."""
    environ = os.environ if environ is None else environ
    keys: dict[str, bytes] = {}
    sources: list[str] = []
    if security.key_file:
        try:
            text = Path(security.key_file).read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(
                f"[security] key_file: cannot read {security.key_file}: {err.strerror}"
            ) from None
        except UnicodeError:
            raise ConfigError(f"[security] key_file: {security.key_file} is not UTF-8") from None
        keys.update(parse_keys(text, f"key file {security.key_file}"))
        sources.append(f"key file {security.key_file}")
    if environ.get(security.keys_env):
        for key_id, key in parse_keys(environ[security.keys_env], security.keys_env).items():
            keys.pop(key_id, None)  # listed again: the environment's place (and value) wins
            keys[key_id] = key
        sources.append(f"${security.keys_env}")
    return KeyRing(keys, " and ".join(sources)) if keys else None


def new_key_entry(key_id: str) -> str:
    """A fresh ``id=base64`` entry (32 bytes from the OS's random source)."""
    return f"{key_id}={base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


def encrypt_payload(ring: KeyRing, payload: Payload) -> Payload:
    key_id = ring.newest
    nonce = os.urandom(NONCE_BYTES)
    # The key id is authenticated data: relabelling a payload with another id fails to open.
    sealed = AESGCM(ring.keys[key_id]).encrypt(nonce, payload.SerializeToString(), key_id.encode())
    return Payload(
        metadata={"encoding": ENCODING, KEY_ID: key_id.encode(), CIPHER: CIPHER_NAME},
        data=nonce + sealed,
    )


def decrypt_payload(ring: KeyRing, payload: Payload) -> Payload:
    if payload.metadata.get("encoding") != ENCODING:
        return payload  # not encrypted (written before encryption was on)
    key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
    key = ring.keys.get(key_id)
    if key is None:
        raise DecryptionError(
            f"payload encrypted with key {key_id!r}, which is not among the keys from "
            f"{ring.source} ({', '.join(ring.keys)}); add it back to decrypt"
        )
    nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
    try:
        plain = AESGCM(key).decrypt(nonce, sealed, key_id.encode())
    except InvalidTag:
        raise DecryptionError(
            f"payload encrypted with key {key_id!r} failed authentication (corrupt, tampered "
            "with, or a different key under the same id)"
        ) from None
    return Payload.FromString(plain)


class EncryptionCodec(PayloadCodec):
    """The codec on every agentflow client, worker and Replayer.

    It seals only when ``seal`` (``[security] encrypt = true``), and opens whatever its keys
    can. Without keys it still recognises encrypted payloads, so a process missing them says
    so in one line instead of failing on an unknown encoding.
    """

    def __init__(self, ring: KeyRing | None, seal: bool) -> None:
        if seal and ring is None:
            raise ValueError("sealing needs keys")
        self.ring, self.seal = ring, seal

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not self.seal or self.ring is None:
            return list(payloads)
        return [encrypt_payload(self.ring, payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(payload) for payload in payloads]

    def _open(self, payload: Payload) -> Payload:
        if self.ring is not None:
            return decrypt_payload(self.ring, payload)
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        raise DecryptionError(
            f"payload encrypted with key {key_id!r}, and this process has no keys: set "
            "AGENTFLOW_ENCRYPTION_KEYS, or give --config with the flow's [security] table"
        )


async def open_failures(events: Sequence[HistoryEvent], converter: DataConverter) -> None:
    """Put failure messages back where readers of raw history look for them.

    With encryption on, a failure's message and stack trace travel sealed in its
    ``encoded_attributes`` (so an error quoting the input does not leak); the SDK restores them
    for workflow code, but ``agentflow trace`` reads history itself.
    """
    codec = converter.payload_codec
    if not isinstance(codec, EncryptionCodec) or codec.ring is None:
        return
    for event in events:
        kind = event.WhichOneof("attributes")
        if kind is not None:
            await _open_failures_in(getattr(event, kind), converter)


async def _open_failures_in(message: Message, converter: DataConverter) -> None:
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        for item in [value] if isinstance(value, Message) else list(value):
            if not isinstance(item, Message):
                continue  # a map's keys (no failures live in maps)
            if isinstance(item, Failure) and item.HasField("encoded_attributes"):
                [opened] = await converter.decode([item.encoded_attributes], [dict])
                item.message = str(opened.get("message", item.message))
                item.stack_trace = str(opened.get("stack_trace", ""))
                item.ClearField("encoded_attributes")
            await _open_failures_in(item, converter)
