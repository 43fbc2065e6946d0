"""``agentflow codec-server``: Temporal's remote codec protocol over the ``[security]`` keys.

The Temporal UI (and ``temporal workflow show --codec-endpoint``) POSTs
``{"payloads": [...]}`` (payloads in protobuf JSON) to ``<endpoint>/decode`` and shows what
comes back; ``/encode`` does the reverse, for payloads typed into the UI. Browsers reach it
only from the UI's origins (CORS), and with ``token_env`` set, only with ``Authorization:
Bearer <token>``: the people who hold the token see decrypted payloads, nobody else does.

Plain ``http.server`` in threads: one request at a time per connection, no extra dependency;
the UI sends a few small requests per page.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import signal
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from agentflow.client.codec import (
    DecryptionError,
    KeyRing,
    decrypt_payload,
    encrypt_payload,
    load_keys,
)
from agentflow.config import DEFAULT_CONFIG_FILE, SecurityConfig, load_config
from agentflow.errors import ConfigError

log = logging.getLogger("agentflow.codec_server")

# Large enough for a page of payloads; stored ones arrive as small references.
MAX_BODY_BYTES = 64 * 1024 * 1024
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"


class CodecServer(ThreadingHTTPServer):
    """The HTTP server; ``handler`` reads the keys, origins and token from here."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        ring: KeyRing,
        origins: Sequence[str],
        token: str | None,
    ) -> None:
        self.ring, self.origins, self.token = ring, tuple(origins), token
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: CodecServer

    def do_OPTIONS(self) -> None:  # the browser's CORS preflight; carries no token
        allowed = self._allowed_origin()
        self._reply(HTTPStatus.NO_CONTENT if allowed else HTTPStatus.FORBIDDEN, None, allowed)

    def do_POST(self) -> None:
        allowed = self._allowed_origin()
        if self.headers.get("Origin") and not allowed:
            return self._reply(HTTPStatus.FORBIDDEN, {"error": "origin not allowed"}, None)
        transform = self._transform()
        if transform is None:
            return self._reply(HTTPStatus.NOT_FOUND, {"error": "POST /encode or /decode"}, allowed)
        if not self._authorized():
            return self._reply(HTTPStatus.UNAUTHORIZED, {"error": "bearer token required"}, allowed)
        status, body = self._convert(transform)
        self._reply(status, body, allowed)

    def _transform(self) -> Callable[[KeyRing, Payload], Payload] | None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/encode"):
            return encrypt_payload
        if path.endswith("/decode"):
            return decrypt_payload
        return None

    def _convert(
        self, transform: Callable[[KeyRing, Payload], Payload]
    ) -> tuple[HTTPStatus, dict[str, Any]]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"}
        try:
            payloads = json_format.Parse(self.rfile.read(length) or b"{}", Payloads())
            out = [transform(self.server.ring, payload) for payload in payloads.payloads]
        except (json_format.ParseError, UnicodeDecodeError) as err:
            return HTTPStatus.BAD_REQUEST, {"error": f"not a payloads object: {err}"}
        except DecryptionError as err:
            return HTTPStatus.BAD_REQUEST, {"error": str(err)}
        return HTTPStatus.OK, json_format.MessageToDict(Payloads(payloads=out))

    def _allowed_origin(self) -> str | None:
        origin = self.headers.get("Origin")
        return origin if origin in self.server.origins else None

    def _authorized(self) -> bool:
        token = self.server.token
        if not token:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def _reply(self, status: HTTPStatus, body: dict[str, Any] | None, origin: str | None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if origin:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Vary", "Origin")
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


def serve(security: SecurityConfig, host: str, port: int) -> CodecServer:
    """A codec server bound to ``host:port`` (0: any free port), not yet serving."""
    ring = load_keys(security)
    token = os.environ.get(security.token_env) or None
    try:
        return CodecServer((host, port), ring, security.ui_origins, token)
    except OSError as err:
        raise ConfigError(f"codec-server: cannot listen on {host}:{port}: {err.strerror}") from None


# --- the command --------------------------------------------------------------------------


def add_command(commands: Any) -> None:
    """Register ``codec-server`` on cli.py's subparsers."""
    cmd = commands.add_parser(
        "codec-server", help="decrypt payloads for the Temporal UI (Temporal's codec protocol)"
    )
    cmd.add_argument("--port", type=int, help="default: [security] codec_port (8234)")
    cmd.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    cmd.add_argument(
        "--config", default=None, help=f"agentflow.toml whose [security] table to use "
        f"(default: {DEFAULT_CONFIG_FILE} if present)",
    )  # fmt: skip
    cmd.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> int:
    security = _security(args.config)
    port = security.codec_port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port: {port} is not a port number")
    server = serve(security, args.host, port)
    ring = server.ring
    print(f"codec server: {server.url}  (keys {', '.join(ring.keys)} from {ring.source}; "
          f"{ring.newest} encrypts)")  # fmt: skip
    print(f"UI origins:   {', '.join(security.ui_origins)}")
    print(f"bearer token: {'required ($' + security.token_env + ')' if server.token else 'none'}")
    print(f"Temporal UI:  agentflow dev --ui-codec-endpoint {server.url}", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _security(path: str | None) -> SecurityConfig:
    if path is None and not Path(DEFAULT_CONFIG_FILE).is_file():
        return SecurityConfig()
    return load_config(path or DEFAULT_CONFIG_FILE, check_handlers=False).security
