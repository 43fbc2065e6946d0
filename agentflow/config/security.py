"""Client and worker data settings: ``[security]`` (payload encryption and the codec server)
and ``[payloads]`` (large payloads kept outside Temporal).

Neither travels in the workflow input: FlowConfig excludes both from its snapshot, like
``[temporal]``. Keys never appear here, only where to find them (an environment variable, a
key file), so nothing secret can reach history.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from agentflow.config._base import StrictModel

DEFAULT_KEYS_ENV = "AGENTFLOW_ENCRYPTION_KEYS"
DEFAULT_TOKEN_ENV = "AGENTFLOW_CODEC_TOKEN"
DEFAULT_CODEC_PORT = 8234
# The dev server's UI (agentflow dev): the only origin the codec server answers by default.
DEFAULT_UI_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
# The SDK's own default: smaller payloads stay inline, in history.
DEFAULT_THRESHOLD_BYTES = 256 * 1024
DEFAULT_MAX_BYTES = 100 * 1024 * 1024


class SecurityConfig(StrictModel):
    """``[security]``: AES-256-GCM encryption of every payload, as a Temporal payload codec."""

    encrypt: bool = False
    # The name of the environment variable that holds the keys ("id=base64key,...", newest
    # last); and/or a file with one "id=base64key" per line. Keys themselves never go here.
    keys_env: str = DEFAULT_KEYS_ENV
    key_file: str | None = None
    # `agentflow codec-server`: its port, the UI origins it answers (CORS), and the name of the
    # environment variable holding its bearer token (unset variable: no token required).
    codec_port: int = Field(DEFAULT_CODEC_PORT, ge=1, le=65535)
    ui_origins: list[str] = Field(default_factory=lambda: list(DEFAULT_UI_ORIGINS))
    token_env: str = DEFAULT_TOKEN_ENV
    # Signed bus events (docs/security-and-payloads.md): the name of the environment variable
    # holding the HMAC-SHA256 keys ("id=base64key,...", newest last: it signs; any verifies).
    # Set (or signing_key_file): every publish is signed, every bus event verified.
    signing_keys_env: str | None = None
    # A file of "id=base64key" lines, read before signing_keys_env's keys.
    signing_key_file: str | None = None

    @property
    def signing(self) -> bool:
        return bool(self.signing_keys_env or self.signing_key_file)


class PayloadsConfig(StrictModel):
    """``[payloads]``: payloads of at least ``threshold_bytes`` go to an external store and
    history keeps a small reference (``temporalio.converter.ExternalStorage``)."""

    # "none": no store, even on the embedded dev server (where one is on by default).
    storage: Literal["filesystem", "s3", "gcs", "none"] = "filesystem"
    # Above Temporal's 2 MB payload limit a threshold would let payloads fail inline.
    threshold_bytes: int = Field(DEFAULT_THRESHOLD_BYTES, ge=0, le=2 * 1024 * 1024)
    # The largest payload (an agent's state, a run's input) the store takes; each is held in
    # memory a few times over by the worker.
    max_bytes: int = Field(DEFAULT_MAX_BYTES, gt=0, le=1024 * 1024 * 1024)
    # filesystem: a directory every worker and client of the flow can read and write.
    path: str = ".agentflow/payloads"
    # s3 and gcs: the bucket; s3 also takes a region and an endpoint (S3-compatible stores).
    bucket: str | None = None
    region: str | None = None
    endpoint_url: str | None = None

    @model_validator(mode="after")
    def _bucket_for_clouds(self) -> PayloadsConfig:
        if self.storage in ("s3", "gcs") and not self.bucket:
            raise ValueError(f'storage = "{self.storage}" needs bucket = "..."')
        return self
