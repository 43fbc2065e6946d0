"""Agent of the loop example: tightens a text one filler phrase per iteration."""

from __future__ import annotations

import re
from typing import Any

from agentflow import Event, State

# Wordy phrase -> shorter phrase ("" drops it). One replacement per iteration.
REWRITES = {
    r"\bin order to\b": "to",
    r"\bat this point in time\b": "now",
    r"\bdue to the fact that\b": "because",
    r"\bvery\s+": "",
    r"\breally\s+": "",
    r"\bbasically,?\s+": "",
    r"\bjust\s+": "",
}


def tighten(event: Event, state: State) -> dict[str, Any]:
    text = str(state.data.get("text", ""))
    for pattern, replacement in REWRITES.items():
        new_text, count = re.subn(pattern, replacement, text, count=1, flags=re.IGNORECASE)
        if count:
            edits = [*state.data.get("edits", []), pattern.strip("\\b").replace("\\s+", " ")]
            return {"text": new_text, "edits": edits, "loop_complete": False}
    return {"loop_complete": True}
