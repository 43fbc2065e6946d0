"""A local LLM server on 127.0.0.1 speaking OpenAI's Chat Completions wire format (which is also
what Ollama, Azure OpenAI and OpenAI-compatible servers speak) and Anthropic's Messages format,
tool calls included.

Every request is recorded. ``script`` queues answers (a text, tool calls, or a raw status and
body); with none queued the server echoes ``"<system prompt>| <last message>"``. A request with
``"stream": true`` gets the same reply as Server-Sent Events, a word at a time
(tests/llm_sse.py), over a chunked response; a ``Text`` can hold its stream part-way (a test
watches the first tokens arrive) or break it off (a connection lost mid-reply). Every reply
it builds, and every streamed event, is parsed with the official SDK's own type (``openai`` /
``anthropic``) before it is sent, and any that does not parse is kept in ``invalid`` (the
fixture fails the test on it): what the agents are tested against is what the real APIs send.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic.types
import openai.types.chat
import pydantic

from tests.llm_sse import Stream, anthropic_stream, openai_stream

_ANTHROPIC_EVENT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(
    anthropic.types.RawMessageStreamEvent
)


@dataclass
class Text:
    """The model answers with this text. Streamed, the server waits for ``FakeLLM.release``
    after ``hold_after`` words (setting ``holding``), and breaks the connection off after
    ``drop_after`` words."""

    content: str
    hold_after: int | None = None
    drop_after: int | None = None


@dataclass
class Calls:
    """The model asks for these tool calls, each ``(tool name, arguments)``."""

    calls: list[tuple[str, dict[str, Any]]]


@dataclass
class Raw:
    """The server answers with this status and body, whatever was asked."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"Retry-After": "2"}


Answer = Text | Calls | Raw


@dataclass
class Reply:
    """What the server sends: a status and body, or (streamed) events."""

    status: int
    body: str = ""
    stream: Stream | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hold_at: int | None = None  # event indexes: wait for ``release`` / break off there
    drop_at: int | None = None


@dataclass
class FakeLLM:
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    # Token counts reported for every reply (input, output).
    usage: tuple[int, int] = (5, 3)
    invalid: list[str] = field(default_factory=list)
    # When each request arrived (time.monotonic()), beside ``requests``.
    received: list[float] = field(default_factory=list)
    # A request for which ``hold`` is true waits until ``release`` is set (crash tests).
    hold: Callable[[dict[str, Any]], bool] | None = None
    release: threading.Event = field(default_factory=threading.Event)
    # Set when a request starts waiting on ``release``.
    holding: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reset(self) -> None:
        """Forget the requests and the script (a fixture shared by a module's tests)."""
        self.requests.clear()
        self.received.clear()
        self.script.clear()
        self.hold = None
        self.release.clear()
        self.holding.clear()

    def url(self, provider: str) -> str:
        """The base URL a provider's client is configured with."""
        root = f"http://127.0.0.1:{self.port}"
        return root if provider in ("ollama", "azure", "anthropic") else f"{root}/v1"

    def answer(self, path: str, body: dict[str, Any]) -> Reply:
        answer = self.script.pop(0) if self.script else None
        if isinstance(answer, Raw):
            return Reply(answer.status, answer.body, headers=answer.headers)
        if path.endswith("/chat/completions"):
            reply = self._openai(body, answer)
            kind: type[pydantic.BaseModel] = openai.types.chat.ChatCompletion
        elif path == "/v1/messages":
            reply = self._anthropic(body, answer)
            kind = anthropic.types.Message
        else:
            return Reply(404, json.dumps({"error": {"message": f"no route {path}"}}))
        self._check(kind.__name__, kind.model_validate, reply)
        if not body.get("stream"):
            return Reply(200, json.dumps(reply))
        check: Callable[[Any], object]
        if kind is anthropic.types.Message:
            stream, check = anthropic_stream(reply), _ANTHROPIC_EVENT.validate_python
        else:
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            stream = openai_stream(reply, usage)
            check = openai.types.chat.ChatCompletionChunk.model_validate
        for event in stream.events:
            if isinstance(event.data, dict):
                self._check(f"{kind.__name__} stream event", check, event.data)
        text = answer if isinstance(answer, Text) else Text("")
        return Reply(
            200, stream=stream,
            hold_at=None if text.hold_after is None else stream.before_piece(text.hold_after),
            drop_at=None if text.drop_after is None else stream.before_piece(text.drop_after),
        )  # fmt: skip

    def _check(self, what: str, parse: Callable[[Any], object], data: Any) -> None:
        try:
            parse(data)
        except pydantic.ValidationError as err:
            self.invalid.append(f"{what}: {err}")

    def _openai(self, body: dict[str, Any], answer: Text | Calls | None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if isinstance(answer, Calls):
            message["tool_calls"] = [
                {"id": f"call_{next(self._ids)}", "type": "function",
                 "function": {"name": name, "arguments": json.dumps(args)}}
                for name, args in answer.calls
            ]  # fmt: skip
            finish = "tool_calls"
        else:
            message["content"] = answer.content if answer else self._echo(body)
            finish = "stop"
        prompt, completion = self.usage
        return {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion",
            "created": 1735689600, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }  # fmt: skip

    def _anthropic(self, body: dict[str, Any], answer: Text | Calls | None) -> dict[str, Any]:
        if isinstance(answer, Calls):
            content = [
                {"type": "tool_use", "id": f"toolu_{next(self._ids)}", "name": name,
                 "input": args}
                for name, args in answer.calls
            ]  # fmt: skip
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": answer.content if answer else self._echo(body)}]
            stop = "end_turn"
        prompt, completion = self.usage
        return {
            "id": f"msg_{next(self._ids)}", "type": "message", "role": "assistant",
            "model": body["model"], "content": content, "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }  # fmt: skip

    @staticmethod
    def _echo(body: dict[str, Any]) -> str:
        messages = body["messages"]
        system = body.get("system") or next(
            (m["content"] for m in messages if m["role"] == "system"), ""
        )
        if isinstance(system, list):  # Anthropic: a list of text blocks
            system = "".join(block["text"] for block in system)
        return f"{system}| {_text(messages[-1]['content'])}"

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _text(content: Any) -> str:
    """A message's content as text: OpenAI's string or parts, Anthropic's blocks."""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.get("type") == "tool_result":
            parts.append(_text(part["content"]))
        else:
            parts.append(str(part.get("text", "")))
    return " ".join(parts)


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = json.loads(raw)
            path = self.path.split("?")[0]
            headers = {name.lower(): value for name, value in self.headers.items()}
            fake.requests.append({"path": path, "headers": headers, **body})
            fake.received.append(time.monotonic())
            if fake.hold is not None and fake.hold(body):
                fake.holding.set()
                fake.release.wait(timeout=60)
            reply = fake.answer(path, body)
            try:
                if reply.stream is not None:
                    self._stream(reply, reply.stream)
                    return
                data = reply.body.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client is gone (a killed worker)
                pass

        def _stream(self, reply: Reply, stream: Stream) -> None:
            # Chunked, as the APIs send it: a stream broken off lacks its last chunk, which
            # clients see as a lost connection (not as a short reply).
            self.protocol_version = "HTTP/1.1"
            self.close_connection = True
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for index, event in enumerate(stream.events):
                if index == reply.hold_at:
                    fake.holding.set()
                    fake.release.wait(timeout=60)
                if index == reply.drop_at:
                    return
                data = event.encode()
                self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def running_fake() -> Iterator[FakeLLM]:
    """A started fake for a fixture; fails the test if it sent a reply the SDKs reject."""
    with FakeLLM() as fake:
        yield fake
    assert not fake.invalid, fake.invalid
