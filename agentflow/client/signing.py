"""Signed bus events: HMAC-SHA256 over what a publish says, checked before any delivery.

Keys come from ``[security] signing_keys_env`` (an environment variable's name) and/or
``signing_key_file``, never from agentflow.toml or workflow input: ``id=base64`` entries of at
least 32 random bytes, newest last, like the encryption keys (agentflow/client/codec.py). The
newest key signs; an event is verified with whichever listed key its ``bus_signing_key`` names,
so keys rotate by appending a new one everywhere and dropping the old one once no unpublished
event needs it.

Clients sign in ``client_request`` (their own file's ``[security]``); workers sign their agents'
publishes and verify in the fan-out with the keys of the flows they serve, installed per
Temporal client by ``use_signing`` when ``serving`` starts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from agentflow.client.codec import KeyRing, parse_key_entries
from agentflow.config import SecurityConfig
from agentflow.errors import ConfigError
from agentflow.models.bus import PublishRequest, signed_bytes

MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class SigningRing(KeyRing):
    """Signing keys by id, in the order listed; the last one (``newest``) signs."""

    def sign(self, request: PublishRequest) -> PublishRequest:
        """``request`` with the newest key's signature (over every field but the signature)."""
        key_id = self.newest
        unsigned = request.model_copy(update={"signing_key": key_id, "signature": None})
        digest = hmac.new(self.keys[key_id], signed_bytes(unsigned), hashlib.sha256).digest()
        return unsigned.model_copy(update={"signature": base64.b64encode(digest).decode()})

    def problem(self, request: PublishRequest) -> str | None:
        """Why ``request``'s signature does not hold (None when it does)."""
        if not request.signature or not request.signing_key:
            return "the event is not signed"
        key = self.keys.get(request.signing_key)
        if key is None:
            return f"the event is signed with key {request.signing_key!r}, not one of {self.source}"
        unsigned = request.model_copy(update={"signature": None})
        digest = hmac.new(key, signed_bytes(unsigned), hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), request.signature):
            return f"the signature (key {request.signing_key!r}) does not match the event"
        return None


def signing_ring(
    security: SecurityConfig, environ: Mapping[str, str] | None = None
) -> SigningRing | None:
    """The keys ``security`` names, or None when it names none; ConfigError when it names
    some and they are missing or malformed."""
    if not security.signing:
        return None
    environ = os.environ if environ is None else environ
    keys: dict[str, bytes] = {}
    sources: list[str] = []
    if security.signing_key_file:
        path = security.signing_key_file
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as err:
            raise ConfigError(f"[security] signing_key_file: cannot read {path}: {err}") from None
        keys.update(parse_signing_keys(text, f"signing key file {path}"))
        sources.append(f"key file {path}")
    name = security.signing_keys_env
    if name and environ.get(name):
        for key_id, key in parse_signing_keys(environ[name], f"${name}").items():
            keys.pop(key_id, None)  # listed again: the environment's place (and value) wins
            keys[key_id] = key
        sources.append(f"${name}")
    if not keys:
        where = " or ".join(
            ([f"${name}"] if name else []) + ([f"{security.signing_key_file}"] if sources else [])
        )
        raise ConfigError(
            f"[security] signing: no signing keys found in {where}; give ID=BASE64 entries of "
            f"at least {MIN_KEY_BYTES} random bytes (docs/security-and-payloads.md)"
        )
    return SigningRing(keys, " and ".join(sources))


def parse_signing_keys(text: str, source: str) -> dict[str, bytes]:
    """HMAC keys: ``id=base64`` entries of at least 32 bytes each."""

    def too_short(key_id: str, key: bytes) -> str | None:
        return None if len(key) >= MIN_KEY_BYTES else (
            f"signing key {key_id!r} is {len(key)} bytes; at least {MIN_KEY_BYTES} (HMAC-SHA256)"
        )  # fmt: skip

    return parse_key_entries(text, source, "signing key", too_short)


# The keys a worker's client signs and verifies with (set by ``serving``).
_RINGS: weakref.WeakKeyDictionary[Client, SigningRing] = weakref.WeakKeyDictionary()


def use_signing(client: Client, ring: SigningRing | None) -> None:
    """Sign the publishes made with ``client`` and verify its fan-outs with ``ring``."""
    current = _RINGS.get(client)
    if ring is None:
        return
    if current is not None and dict(current.keys) != dict(ring.keys):
        raise ConfigError(
            f"signing keys of {ring.source} differ from those this worker already uses "
            f"({current.source}): every flow a process serves must share the bus's keys"
        )
    _RINGS[client] = ring


def ring_of(client: Client) -> SigningRing | None:
    return _RINGS.get(client)


def forget_signing(client: Client) -> None:
    """Stop signing and verifying with ``client`` (a test, a process that stops serving)."""
    _RINGS.pop(client, None)
