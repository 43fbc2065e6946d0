"""The research example's Python parts: the intake and publisher agents around the two LLM
agents, and ``keywords``, a Python tool the researcher's model may call."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from agentflow import Event, FatalError, State

STOP_WORDS = set("a an and are do does for how in is it of on or the to what why with".split())


def intake(event: Event, state: State) -> dict[str, Any]:
    """The question becomes the researcher's message (what an LLM agent is asked)."""
    question = state.data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise FatalError('input needs a "question", e.g. {"question": "What is MCP?"}')
    return {"message": question.strip()}


def keywords(text: str, top: int = 3) -> list[str]:
    """The most frequent words of a text, to search the library with.

    Args:
        text: the text, usually the question
        top: how many words to return
    """
    words = [w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP_WORDS]
    return [word for word, _ in Counter(words).most_common(top)]


def publish(event: Event, state: State) -> dict[str, Any]:
    """The report: the question, the researcher's notes and the writer's answer."""
    return {
        "report": {
            "question": state.data["question"],
            "notes": state.data.get("researcher", ""),
            "answer": state.data.get("writer", ""),
        }
    }
