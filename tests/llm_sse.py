"""The streamed form of a reply the fake LLM server (tests/llm_server.py) has built: the
Server-Sent Events OpenAI's Chat Completions and Anthropic's Messages APIs send for
``"stream": true``, derived from the complete reply so both forms always say the same thing.

Each event is ``Event(name, data)``; ``pieces`` are the events that carry the reply's text or
tool arguments piece by piece (a test can hold or break the stream between them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    name: str | None  # Anthropic names each event; OpenAI sends bare ``data:`` lines
    data: dict[str, Any] | str  # ``"[DONE]"``: OpenAI's end of stream

    def encode(self) -> bytes:
        data = self.data if isinstance(self.data, str) else json.dumps(self.data)
        head = f"event: {self.name}\n" if self.name else ""
        return f"{head}data: {data}\n\n".encode()


@dataclass
class Stream:
    events: list[Event]
    pieces: list[int]  # indexes in ``events`` of the events carrying a piece of the reply

    def before_piece(self, count: int) -> int:
        """Where the stream is after ``count`` pieces were sent (the index of the next event)."""
        if count < len(self.pieces):
            return self.pieces[count]
        return self.pieces[-1] + 1 if self.pieces else len(self.events)


def pieces(text: str) -> list[str]:
    """Text as a model generates it: a word at a time, each with the space before it."""
    words = re.findall(r"\s*\S+", text)
    if not words:
        return [text]
    words[-1] += text[len("".join(words)) :]
    return words


def openai_stream(reply: dict[str, Any], include_usage: bool) -> Stream:
    """A ``chat.completion`` as its ``chat.completion.chunk`` events: the role, the content or
    each tool call (its id and name, then its arguments), the finish reason, the usage chunk
    when ``stream_options.include_usage`` asked for it, and ``[DONE]``."""
    head = {key: reply[key] for key in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk"
    if include_usage:  # every chunk carries the key; only the last one a value
        head["usage"] = None
    choice = reply["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Event:
        return Event(None, {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                 "finish_reason": finish}]})  # fmt: skip

    events = [chunk({"role": "assistant", "content": "" if message["content"] else None})]
    at: list[int] = []
    if message["content"]:
        for piece in pieces(message["content"]):
            at.append(len(events))
            events.append(chunk({"content": piece}))
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        start = {"index": index, "id": call["id"], "type": "function",
                 "function": {"name": function["name"], "arguments": ""}}  # fmt: skip
        events.append(chunk({"tool_calls": [start]}))
        for piece in pieces(function["arguments"]):
            at.append(len(events))
            events.append(chunk({"tool_calls": [{"index": index,
                                                 "function": {"arguments": piece}}]}))  # fmt: skip
    events.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        events.append(Event(None, {**head, "choices": [], "usage": reply["usage"]}))
    events.append(Event(None, "[DONE]"))
    return Stream(events, at)


def anthropic_stream(reply: dict[str, Any]) -> Stream:
    """A ``message`` as its events: ``message_start`` (input tokens), each content block's
    start, deltas (``text_delta`` / ``input_json_delta``) and stop, ``message_delta`` (stop
    reason and output tokens, cumulative) and ``message_stop``."""
    usage = reply["usage"]
    opening = {**reply, "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}  # fmt: skip
    events = [_named("message_start", message=opening)]
    at: list[int] = []
    for index, block in enumerate(reply["content"]):
        start: dict[str, Any]
        if block["type"] == "text":
            start, text = {"type": "text", "text": ""}, block["text"]
            kind, key = "text_delta", "text"
        else:  # tool_use: its input arrives as JSON text
            start, text = {**block, "input": {}}, json.dumps(block["input"])
            kind, key = "input_json_delta", "partial_json"
        events.append(_named("content_block_start", index=index, content_block=start))
        for piece in pieces(text):
            at.append(len(events))
            events.append(_named("content_block_delta", index=index,
                                 delta={"type": kind, key: piece}))  # fmt: skip
        events.append(_named("content_block_stop", index=index))
    delta = {"stop_reason": reply["stop_reason"], "stop_sequence": None}
    output = {"output_tokens": usage["output_tokens"]}
    events.append(_named("message_delta", delta=delta, usage=output))
    events.append(_named("message_stop"))
    return Stream(events, at)


def _named(name: str, **data: Any) -> Event:
    return Event(name, {"type": name, **data})
