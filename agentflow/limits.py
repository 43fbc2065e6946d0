"""Temporal's limits, and the checks that keep what agentflow sends within them.

Why check before sending: a value Temporal refuses in the middle of a run (an id too long, a
timeout it cannot represent) fails the *workflow task*, which Temporal retries until the run
times out; a value the JSON converter cannot represent (NaN, a lone surrogate) is changed
silently. Checked at load, input or agent-output time, each is one clear message that names
where the value is.

Pure and import-light: the config models, which workflow code imports, use these constants.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Workflow ids, activity ids and task queue names: the server's default limit is 1,000 bytes.
MAX_ID_BYTES = 1000
# A Keyword search attribute value (the flow name and session id are ones).
MAX_KEYWORD_BYTES = 2048
# Attempt counts travel as protobuf int32.
INT32_MAX = 2**31 - 1
# Durations become timedelta (microsecond resolution), then protobuf Durations and, in the
# server, 64-bit nanoseconds (about 292 years). Below a millisecond a timeout rounds towards
# "no timeout"; ten years is past any sensible timeout and keeps deadline arithmetic in range.
MIN_DURATION_SECONDS = 0.001
MAX_DURATION_SECONDS = 10 * 365 * 24 * 3600
# pydantic decodes a whole Temporal payload with a limit of 200 levels of nesting, and
# agentflow's own models wrap user data in up to about ten levels (error routing, dead letters).
MAX_DATA_DEPTH = 100
# Failure messages are recorded in history and repeated in results, trace and dead letters.
MAX_MESSAGE_CHARS = 10_000
# A terminal shows a failure message up to this long on one line (``terminal_line``).
SHOWN_MESSAGE_CHARS = 300
# Temporal refuses a payload over 2 MB (its blob size limit) unless a [payloads] store keeps it.
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
# Keys and list items in one run input, all levels: every workflow task that touches the state
# decodes and copies all of it (about 0.6 s per pass at 200,000 keys on one core), and a workflow
# task that runs for 2 s is failed by Temporal's deadlock detector and retried without end.
MAX_DATA_ITEMS = 100_000
_SHOWN_KEY_CHARS = 40
_SHOWN_PATH_PARTS = 12
_FINITE = "JSON has no NaN or Infinity, and numbers end at about 1.8e308"


class NotFinite(str):
    """A JSON number that is not finite (``NaN``, ``Infinity``, ``1e400``), kept as its text so
    that ``data_problem`` can report it, with its key path, instead of it turning into null."""


def loads(text: str) -> Any:
    """``json.loads``, except that non-finite numbers come back as ``NotFinite`` markers.

    Raises ValueError (JSONDecodeError included) for text that is not JSON, and RecursionError
    for nesting deeper than Python's recursion limit.
    """

    def number(literal: str) -> float | NotFinite:
        value = float(literal)
        return value if math.isfinite(value) else NotFinite(literal)

    return json.loads(text, parse_float=number, parse_constant=NotFinite)


def data_problem(value: Any, *, root: str = "", max_depth: int = MAX_DATA_DEPTH) -> str | None:
    """Why ``value`` (JSON-like data) would not reach Temporal unchanged, as "key path: what"
    (paths start at ``root``), or None when it would.

    Found: NaN and infinite numbers, text with lone surrogates, dict keys that are not strings,
    and nesting deeper than ``max_depth``. Iterative, so any depth is safe to check.
    """
    problem = _scalar_problem(value)
    if problem is not None or not isinstance(value, dict | list | tuple):
        return None if problem is None else f"{root or '(top level)'}: {problem}"
    # Each container's parent and key, so a path is built only when there is a problem.
    parents: list[tuple[int, str | int]] = [(-1, root)]
    stack: list[tuple[dict[Any, Any] | list[Any] | tuple[Any, ...], int, int]] = [(value, 0, 1)]
    while stack:
        container, node, depth = stack.pop()
        if depth > max_depth:
            return (
                f"{_path(parents, node)}: nested more than {max_depth} levels deep (Temporal "
                "payloads are decoded with a limit of 200 levels)"
            )
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, child in items:
            if isinstance(container, dict) and not isinstance(key, str):
                return (
                    f"{_path(parents, node)}: key {key!r} is not a string (JSON object keys "
                    "are strings)"
                )
            if isinstance(key, str) and (problem := _text_problem(key)):
                return f"{_path(parents, node)}: a key holds {problem}"
            if isinstance(child, dict | list | tuple):
                parents.append((node, key))
                stack.append((child, len(parents) - 1, depth + 1))
            elif problem := _scalar_problem(child):
                return f"{_path(parents, node, key)}: {problem}"
    return None


def data_items(value: Any, stop_after: int = MAX_DATA_ITEMS) -> int:
    """How many dict keys and list items ``value`` holds, all levels (counting stops just past
    ``stop_after``, so a huge value costs no more than the limit)."""
    count, stack = 0, [value]
    while stack and count <= stop_after:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(v for v in item.values() if isinstance(v, dict | list | tuple))
        elif isinstance(item, list | tuple):
            count += len(item)
            stack.extend(v for v in item if isinstance(v, dict | list | tuple))
    return count


def shorten(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` cut to ``limit`` characters, saying how long it was."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}… (cut; {len(message):,} characters in all)"


def terminal_line(message: str, where: str, limit: int = SHOWN_MESSAGE_CHARS) -> str:
    """``message`` as one short terminal line, saying ``where`` the whole of it is."""
    if len(message) <= limit and "\n" not in message:
        return message
    return f"{message[:limit].splitlines()[0]}… (cut; {len(message):,} characters: {where})"


def printable(text: str) -> str:
    """``text`` with lone surrogates escaped, so that it can be printed and encoded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def key_part(key: str | int) -> str:
    """One step of a key path: ``.name``, ``[3]`` or ``["odd key"]``; long keys are cut."""
    if isinstance(key, int):
        return f"[{key}]"
    shown = key if len(key) <= _SHOWN_KEY_CHARS else f"{key[:_SHOWN_KEY_CHARS]}…({len(key)} chars)"
    if key.isidentifier() or key.replace("-", "_").isidentifier():
        return f".{shown}"
    return f"[{json.dumps(shown)}]"


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, NotFinite):
        return f"{value} is not a finite number ({_FINITE})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number ({_FINITE})"
    if isinstance(value, str):
        problem = _text_problem(value)
        return None if problem is None else f"text holds {problem}"
    return None


def _text_problem(text: str) -> str | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"a lone surrogate (\\u{ord(text[err.start]):04x}), which is not valid Unicode"
    return None


def _path(parents: list[tuple[int, str | int]], node: int, last: str | int | None = None) -> str:
    parts: list[str] = [] if last is None else [key_part(last)]
    while node > 0:
        node, key = parents[node]
        parts.append(key_part(key))
    parts.reverse()
    if len(parts) > _SHOWN_PATH_PARTS:  # a path 100 levels deep: its start and its end
        parts[6:-3] = [f"…({len(parts) - 9} more)…"]
    root = str(parents[0][1])
    return (root + "".join(parts)).removeprefix(".") or "(top level)"


# The config snapshot travels in every workflow and activity input, beside the event and state.
MAX_SNAPSHOT_BYTES = 256 * 1024
# Bytes of event ids a session remembers to drop repeated events (its dedupe window is the
# smaller of this and [sessions] dedupe_window); the trace replays the same window.
MAX_SEEN_BYTES = 400 * 1024
