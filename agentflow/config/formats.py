"""AgenticGoKit files that are not a flow file: a project whose agents are Go code, a
settings fragment, and the newer single-agent format (top-level ``name`` and
``system_prompt``), which is translated into a one-agent sequential flow."""

from __future__ import annotations

import re
from typing import Any

from agentflow.errors import ConfigError

SINGLE_AGENT_KEYS = ("name", "system_prompt", "timeout", "debug_mode", "llm", "tracing",
                     "streaming", "memory", "tools", "workflow")  # fmt: skip
FLOW_TABLES = ("agent_flow", "orchestration", "agents")
# Go durations as AgenticGoKit writes them: "30s", "1m30s", "500ms", "2h".
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def flow_document(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """``raw`` as a flow document: unchanged, or translated; ConfigError saying what the
    file is when it is not a flow at all."""
    if ("name" in raw or "system_prompt" in raw) and not any(t in raw for t in FLOW_TABLES):
        return single_agent_flow(raw, source)
    if "orchestration" in raw and "agents" not in raw:
        return _agents_in_code(raw, source)
    if "orchestration" not in raw and "agents" not in raw and raw:
        raise ConfigError(
            f"{source}: a settings fragment with no flow: it has no [agents] and no "
            "[orchestration] (AgenticGoKit merges such tables into a project's "
            "agentflow.toml). Copy its tables into a flow file that defines [agents.NAME] and "
            "[orchestration] mode"
        )
    return raw


def _agents_in_code(raw: dict[str, Any], source: str) -> dict[str, Any]:
    orchestration = raw.get("orchestration")
    named: list[str] = []
    if isinstance(orchestration, dict):
        for key in ("sequential_agents", "collaborative_agents"):
            value = orchestration.get(key)
            named += [n for n in value if isinstance(n, str)] if isinstance(value, list) else []
        if isinstance(loop := orchestration.get("loop_agent"), str):
            named.append(loop)
    if not named:
        return raw  # route mode with no agents: the schema's own message says what to add
    listed = ", ".join(dict.fromkeys(named))
    raise ConfigError(
        f"{source}: agents: this AgenticGoKit project defines its agents in Go code "
        f"(registered in main.go), not in the file; agentflow needs each of {listed} as "
        '[agents.NAME] with handler = "package.module:function" (Python) or a '
        "system_prompt (an LLM agent)"
    )


def go_duration(value: Any, key: str, source: str) -> float:
    """Seconds in a Go duration string ("30s", "1m30s", "500ms")."""
    text = value.strip() if isinstance(value, str) else ""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(
            f'{source}: {key}: {value!r} is not a duration; write it like "30s", "2m" or "500ms"'
        )
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _off(raw: dict[str, Any], table: str) -> bool:
    value = raw.get(table)
    return value is None or (isinstance(value, dict) and value.get("enabled") is False)


def single_agent_flow(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """AgenticGoKit's single-agent file as a flow with one sequential agent.

    ``name`` names the flow and the agent, ``system_prompt`` and ``timeout`` are the agent's,
    ``[llm]`` is the flow's ``[llm]``; ``debug_mode = true`` sets the worker's log level to
    debug; ``[tracing]`` is always on (every run's trace is kept: ``agentflow trace``).
    Memory, tools, streaming and ``[workflow]`` are refused unless disabled.
    """
    problems = [
        f"{key}: unknown key in AgenticGoKit's single-agent format; allowed keys: "
        + ", ".join(SINGLE_AGENT_KEYS)
        for key in raw
        if key not in SINGLE_AGENT_KEYS
    ]
    if "workflow" in raw:
        problems.append(
            "workflow: a single-agent file's [workflow] runs agents defined in Go code; write "
            "a flow file with [agents.NAME] and [orchestration] instead"
        )
    for table, instead in (
        ("memory", "keep what the agent must remember in the run's state or a session"),
        ("tools", "write a flow file with agents.NAME.tools and [mcp] servers"),
        ("streaming", "read the agent's reply from the run's result"),
    ):
        if not _off(raw, table):
            problems.append(f"{table}: not supported in the single-agent format; {instead}")
    tracing = raw.get("tracing")
    if isinstance(tracing, dict) and tracing.get("enabled") is False:
        problems.append(
            "tracing.enabled: false is not possible: agentflow keeps every run's trace in "
            "Temporal's history (agentflow trace RUN); remove [tracing]"
        )
    if problems:
        raise ConfigError("\n".join(f"{source}: {problem}" for problem in problems))
    name = raw.get("name") or "agent"
    agent: dict[str, Any] = {"system_prompt": raw.get("system_prompt", "")}
    if "timeout" in raw:
        agent["timeout_seconds"] = go_duration(raw["timeout"], "timeout", source)
    flow: dict[str, Any] = {
        "agent_flow": {"name": name},
        "agents": {name: agent},
        "orchestration": {"mode": "sequential", "sequential_agents": [name]},
    }
    if "llm" in raw:
        flow["llm"] = raw["llm"]
    if raw.get("debug_mode") is True:
        flow["logging"] = {"level": "debug"}
    elif raw.get("debug_mode") not in (None, False):
        raise ConfigError(f"{source}: debug_mode: must be true or false")
    return flow
