"""What every config table shares: the strict base model, names and limits, did-you-mean."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

MODES = ("route", "sequential", "collaborative", "loop", "mixed")
MODE_ALIASES = {"collaborate": "collaborative", "parallel": "collaborative"}
LLM_PROVIDERS = ("ollama", "openai")
DEFAULT_CONFIG_FILE = "agentflow.toml"
# The seeds' hook points (AgenticGoKit's HookPoint names are accepted as aliases).
HOOK_POINTS = ("before_event_handling", "after_event_handling", "before_agent_run",
               "after_agent_run", "agent_error", "all")  # fmt: skip
# How an agent failed, for [error_routing] category_handlers (see error_kind in workflows).
ERROR_KINDS = ("validation", "timeout", "fatal", "default")
# AgenticGoKit's error codes for the same kinds.
ERROR_KIND_ALIASES = {"VALIDATION_ERROR": "validation", "TIMEOUT_ERROR": "timeout"}
# Temporal keeps ids and Keyword search attribute values short (workflow ids: 1,000 bytes;
# a Keyword value: 2,048 bytes). Flow names go into both, with a session id or event id.
MAX_FLOW_NAME_BYTES = 200

ModeName = Literal["route", "sequential", "collaborative", "loop", "mixed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
