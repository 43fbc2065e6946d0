"""A fake LLM provider that misbehaves at set rates: the fake of tests/llm_server.py (OpenAI's
wire format, checked against the SDK's own types) behind a request handler that first decides,
per request, to answer 429 with ``Retry-After``, 500, to reply slowly, or to cut the streamed
reply off mid-way.

It answers like a model with one tool: a conversation's first request gets a call of
``lookup``, the request that carries the tool's result gets the final text. A conversation is
named by ``[conv:KEY]`` in its first user message; the provider counts every request and every
fault per conversation, so the soak can tell which requests the retry policy explains.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm_server import Answer, Calls, FakeLLM, Reply, Text

CONVERSATION = re.compile(r"\[conv:([^\]\s]+)\]")
FAULTS = ("429", "500", "slow", "cut")


@dataclass(frozen=True)
class Rates:
    """The share of model requests that meet each fault."""

    too_many: float = 0.05  # 429 with Retry-After
    server_error: float = 0.05  # 500
    slow: float = 0.05  # the reply waits ``slow_seconds`` first
    cut: float = 0.05  # a streamed text reply breaks off after two words
    retry_after_seconds: int = 1
    slow_seconds: float = 1.5


@dataclass
class Tally:
    requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    # After a 429: how long the client waited before its next request (Retry-After honoured?).
    retry_gaps: list[float] = field(default_factory=list)
    last_429: float | None = None
    times: list[float] = field(default_factory=list)  # time.time() of each request


class FaultyLLM(FakeLLM):
    """``FakeLLM`` with faults at ``rates`` and per-conversation counts in ``tallies``."""

    def __init__(self, rates: Rates, reply_chars: int = 200, seed: int = 7) -> None:
        super().__init__()
        self.rates, self.reply_chars = rates, reply_chars
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.tallies: dict[str, Tally] = defaultdict(Tally)
        base: type[BaseHTTPRequestHandler] = self.server.RequestHandlerClass  # type: ignore[assignment]
        self.server.RequestHandlerClass = _faulty(self, base)

    def decide(self, body: dict[str, Any]) -> tuple[str, str | None]:
        """The request's conversation and the fault it meets (None: none)."""
        key = conversation(body)
        last = body["messages"][-1]
        with self.lock:
            tally = self.tallies[key]
            tally.requests += 1
            tally.times.append(time.time())
            now = time.monotonic()
            if tally.last_429 is not None:
                tally.retry_gaps.append(now - tally.last_429)
                tally.last_429 = None
            self.requests.clear()  # the soak counts in tallies; the list would only grow
            draw, rates = self.random.random(), self.rates
            fault: str | None = None
            for name, rate in zip(FAULTS, (rates.too_many, rates.server_error, rates.slow,
                                           rates.cut), strict=True):  # fmt: skip
                if draw < rate:
                    fault = name
                    break
                draw -= rate
            if fault == "cut" and (last["role"] != "tool" and self.wants_tool(body)):
                fault = None  # only text replies are cut (a tool call's stream is short)
            if fault is not None:
                tally.faults[fault] += 1
            if fault == "429":
                tally.last_429 = now
        return key, fault

    @staticmethod
    def wants_tool(body: dict[str, Any]) -> bool:
        return bool(body.get("tools"))

    def answer(self, path: str, body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]
        key = conversation(body)
        reply: Answer
        if self.wants_tool(body) and last["role"] != "tool":
            reply = Calls([("lookup", {"key": key})])
        else:
            text = f"reply to {key}: " + "lorem ipsum " * (self.reply_chars // 12)
            reply = Text(text, drop_after=getattr(_cut, "words", None))
        with self.lock:  # FakeLLM.answer takes the script's first answer: this one
            self.script.insert(0, reply)
            return super().answer(path, body)


_cut = threading.local()  # set by the handler for a request whose stream is to be cut


def conversation(body: dict[str, Any]) -> str:
    for message in body["messages"]:
        if message["role"] == "user":
            found = CONVERSATION.search(str(message.get("content")))
            if found:
                return found.group(1)
    return "?"


def _faulty(fake: FaultyLLM, base: type[BaseHTTPRequestHandler]) -> type[BaseHTTPRequestHandler]:
    class Faulty(base):  # type: ignore[valid-type, misc]
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            raw = self.rfile.read(length)
            _, fault = fake.decide(json.loads(raw))
            if fault in ("429", "500"):
                status = 429 if fault == "429" else 500
                data = b'{"error": {"message": "soak fault", "type": "soak"}}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    if status == 429:
                        self.send_header("Retry-After", str(fake.rates.retry_after_seconds))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass
                return
            if fault == "slow":
                time.sleep(fake.rates.slow_seconds)
            _cut.words = 2 if fault == "cut" else None
            setattr(self, "rfile", _Replay(raw))  # noqa: B010 (a BinaryIO in its place)
            super().do_POST()

    return Faulty


class _Replay:
    """The request body again, for the base handler to read."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def read(self, size: int = -1) -> bytes:
        data, self.raw = self.raw, b""
        return data

    def close(self) -> None:
        self.raw = b""
