"""A local embeddings server on 127.0.0.1 speaking OpenAI's wire format: ``POST /v1/embeddings``
(OpenAI, Ollama's OpenAI-compatible API, compatible servers) and Azure's
``POST /openai/deployments/{deployment}/embeddings?api-version=...``.

Every request is recorded (path, query, headers, body). ``script`` queues answers: vectors of
a given length (a model of other dimensions), a raw status with headers and body (errors), or
a hold until ``release`` (a server that does not answer in time). With none queued it answers
with the dummy vectors of the inputs (agentflow/memory/embedding.py), of the request's
``dimensions`` or of ``dimensions`` here. Each reply is parsed with the official SDK's
``openai.types.CreateEmbeddingResponse`` before it is sent (``invalid`` keeps any that does
not parse), and encoded as base64 float32 when the request asks (the SDK does by default).
"""

from __future__ import annotations

import base64
import json
import re
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openai.types
import pydantic

from agentflow.memory.dummy import dummy_vector

_AZURE = re.compile(r"/openai/deployments/([^/]+)/embeddings")


@dataclass
class Vectors:
    """Answer with vectors of this many values, whatever the request asked."""

    dimensions: int


@dataclass
class Raw:
    """Answer with this status, headers and body."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hold:
    """Answer only once ``release`` is set (the client's timeout runs out first)."""


Answer = Vectors | Raw | Hold


def error_body(message: str, kind: str = "invalid_request_error") -> str:
    """An error body as OpenAI sends it."""
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}})


@dataclass
class FakeEmbeddings:
    dimensions: int = 1536  # when the request has no "dimensions"
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.port = self.server.server_address[1]
        self.root = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reset(self) -> None:
        """Forget the requests and the script (a fixture shared by a module's tests)."""
        self.requests.clear()
        self.script.clear()
        self.release.clear()

    def answer(self, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> Raw:
        answer = self.script.pop(0) if self.script else None
        if isinstance(answer, Raw):
            return answer
        if isinstance(answer, Hold):
            self.release.wait(timeout=60)
        azure = _AZURE.fullmatch(path)
        if path != "/v1/embeddings" and not azure:
            return Raw(404, error_body(f"no route {path}"))
        if azure and not query.get("api-version"):
            return Raw(404, error_body("Resource not found"))
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) and t for t in texts):
            return Raw(400, error_body("'$.input' is invalid: a string or non-empty strings"))
        size = answer.dimensions if isinstance(answer, Vectors) else None
        size = size or body.get("dimensions") or self.dimensions
        vectors = [dummy_vector(text, size) for text in texts]
        reply: dict[str, Any] = {
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": v}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }  # fmt: skip
        try:
            openai.types.CreateEmbeddingResponse.model_validate(reply)
        except pydantic.ValidationError as err:
            self.invalid.append(f"CreateEmbeddingResponse: {err}")
        if body.get("encoding_format") == "base64":  # little-endian float32, as OpenAI sends
            for item in reply["data"]:
                packed = struct.pack(f"<{len(item['embedding'])}f", *item["embedding"])
                item["embedding"] = base64.b64encode(packed).decode()
        return Raw(200, json.dumps(reply))

    def __enter__(self) -> FakeEmbeddings:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _handler(fake: FakeEmbeddings) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = json.loads(raw)
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            headers = {name.lower(): value for name, value in self.headers.items()}
            fake.requests.append({"path": url.path, "query": query, "headers": headers, **body})
            reply = fake.answer(url.path, query, body)
            data = reply.body.encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (its timeout)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def running_fake(dimensions: int = 1536) -> Iterator[FakeEmbeddings]:
    """A started fake for a fixture; fails the test if it built a reply the SDK rejects."""
    with FakeEmbeddings(dimensions) as fake:
        yield fake
    assert not fake.invalid, fake.invalid
