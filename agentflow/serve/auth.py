"""Who may do what: API keys (bearer tokens), each naming a principal and a role.

Keys come from the environment or a TOML file:

- ``AGENTFLOW_API_KEYS="NAME:ROLE:TOKEN,NAME:ROLE:TOKEN"``: comma-separated entries, each a
  name, a role and a token separated by the first two colons (a token may hold colons, not
  commas or whitespace);
- ``--keys-file keys.toml``: one table per key, ``[keys.NAME]`` with ``role`` and ``token``.

Roles: ``viewer`` reads; ``emitter`` reads, posts events and starts runs; ``approver`` reads
and decides approvals; ``admin`` does everything (redrive, purge, close sessions). A token has
at least 16 characters; names and tokens are unique. Lookups compare every token in constant
time, so timing tells nothing about which one nearly matched.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from agentflow.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["KEYS_ENV", "ROLES", "SECRET_ENV", "Action", "ApiKeys", "Principal", "load_keys"]

KEYS_ENV = "AGENTFLOW_API_KEYS"
SECRET_ENV = "AGENTFLOW_SERVE_SECRET"
MIN_TOKEN_LENGTH = 16


class Action(str, Enum):
    """What a request does; a role allows some of them."""

    READ = "read"
    EMIT = "emit"
    DECIDE = "decide"
    ADMIN = "admin"

    def __str__(self) -> str:
        return self.value


ROLES: dict[str, frozenset[Action]] = {
    "viewer": frozenset({Action.READ}),
    "emitter": frozenset({Action.READ, Action.EMIT}),
    "approver": frozenset({Action.READ, Action.DECIDE}),
    "admin": frozenset(Action),
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@dataclass(frozen=True)
class Principal:
    """Who a token speaks for (``name``, recorded with decisions) and its role."""

    name: str
    role: str  # "viewer" | "emitter" | "approver" | "admin"

    def may(self, action: Action) -> bool:
        return action in ROLES.get(self.role, frozenset())


@dataclass(frozen=True)
class _Key:
    principal: Principal
    digest: bytes  # sha256 of the token: equal lengths for compare_digest


class ApiKeys:
    """The keys a server accepts. Empty only under ``--insecure-local``."""

    def __init__(self, entries: Mapping[str, tuple[str, str]], source: str = KEYS_ENV) -> None:
        """``entries``: name → (role, token); ConfigError (naming ``source``) when one is bad."""
        keys: list[_Key] = []
        seen: set[bytes] = set()
        for name, (role, token) in entries.items():
            where = f"{source}: key {name!r}"
            if not _NAME.fullmatch(name):
                raise ConfigError(f"{where}: a name is 1-64 letters, digits or _.@-")
            if role not in ROLES:
                raise ConfigError(f"{where}: unknown role {role!r}; allowed: {', '.join(ROLES)}")
            if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() or c == "," for c in token):
                raise ConfigError(
                    f"{where}: a token has at least {MIN_TOKEN_LENGTH} characters, "
                    "no whitespace and no commas"
                )
            digest = hashlib.sha256(token.encode()).digest()
            if digest in seen:
                raise ConfigError(f"{where}: the same token as another key; give each its own")
            seen.add(digest)
            keys.append(_Key(Principal(name, role), digest))
        self._keys = tuple(keys)
        self._secret = _secret(entries)

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, token: str) -> Principal | None:
        """The principal of ``token``, comparing against every key in constant time."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: Principal | None = None
        for key in self._keys:  # no early exit: each lookup costs the same
            if hmac.compare_digest(key.digest, digest):
                found = key.principal
        return found

    def signing_secret(self) -> bytes:
        """A secret to sign cookies and CSRF tokens with: ``AGENTFLOW_SERVE_SECRET`` if set,
        else derived from the keys (so servers sharing the keys share it; random without
        keys)."""
        return self._secret


def _secret(entries: Mapping[str, tuple[str, str]]) -> bytes:
    configured = os.environ.get(SECRET_ENV)
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    if not entries:
        return os.urandom(32)
    material = "\n".join(f"{n}:{r}:{t}" for n, (r, t) in sorted(entries.items()))
    return hmac.new(b"agentflow serve signing", material.encode(), hashlib.sha256).digest()


def parse_env(text: str) -> dict[str, tuple[str, str]]:
    """``NAME:ROLE:TOKEN,...`` → name → (role, token)."""
    entries: dict[str, tuple[str, str]] = {}
    for number, item in enumerate(text.split(","), 1):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":", 2)
        if len(parts) != 3:
            raise ConfigError(f"{KEYS_ENV}: entry {number} is not NAME:ROLE:TOKEN")
        name, role, token = parts
        if name in entries:
            raise ConfigError(f"{KEYS_ENV}: key {name!r} appears twice")
        entries[name] = (role, token)
    return entries


def parse_file(path: str | Path) -> dict[str, tuple[str, str]]:
    """A keys file: ``[keys.NAME]`` tables with ``role`` and ``token``."""
    try:
        data: dict[str, Any] = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the keys file: {err.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a TOML file: {err}") from None
    unknown = sorted(set(data) - {"keys"})
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown key; allowed keys: keys")
    tables = data.get("keys", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: keys: expected tables [keys.NAME] with role and token")
    entries: dict[str, tuple[str, str]] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: keys.{name}: expected a table with role and token")
        extra = sorted(set(table) - {"role", "token"})
        if extra:
            raise ConfigError(f"{path}: keys.{name}.{extra[0]}: unknown key; allowed: role, token")
        role, token = table.get("role"), table.get("token")
        if not isinstance(role, str) or not isinstance(token, str):
            raise ConfigError(f"{path}: keys.{name}: role and token are both required strings")
        entries[name] = (role, token)
    return entries


def load_keys(keys_file: str | None = None, environ: Mapping[str, str] | None = None) -> ApiKeys:
    """The keys of ``--keys-file`` if given, else of ``AGENTFLOW_API_KEYS`` (may be none)."""
    if keys_file is not None:
        return ApiKeys(parse_file(keys_file), source=keys_file)
    environ = os.environ if environ is None else environ
    return ApiKeys(parse_env(environ.get(KEYS_ENV, "")))
