"""Python tools and an output model for the LLM tests (``tools = ["tests.llm_tools:add"]``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

# The file ``record`` appends to: a crash test waits on it and counts its lines.
MARKER_ENV = "AGENTFLOW_TEST_TOOL_MARKER"


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first
        b: the second
    """
    return a + b


async def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


def record(note: str) -> str:
    """Write a note down (once per call: the crash test counts the lines)."""
    marker = Path(os.environ[MARKER_ENV])
    with marker.open("a") as out:
        out.write(note + "\n")
    return f"noted {note}"


class Summary(BaseModel):
    """A reply as validated data (``output_schema = "tests.llm_tools:Summary"``)."""

    title: str
    points: list[str]
