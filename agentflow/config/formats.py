"""AgenticGoKit files as AgenticGoKit writes them: its spellings in ``[orchestration]``
(``agents = [...]``, ``timeout = "30s"``, collaborative mode without a list), translated into
agentflow's keys with the meaning AgenticGoKit gives them; a settings fragment, which is not a
flow; and the newer single-agent format (top-level ``name`` and ``system_prompt``), which is
translated into a one-agent sequential flow. (Agents that the orchestration names but
``[agents]`` lacks are registered in code: agentflow/config/registered.py.)"""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import ValidationError

from agentflow.config._base import MODE_ALIASES
from agentflow.config.memory import MEMORY_PROVIDERS, AgentMemoryConfig
from agentflow.errors import ConfigError

SINGLE_AGENT_KEYS = ("name", "system_prompt", "timeout", "debug_mode", "llm", "tracing",
                     "streaming", "memory", "tools", "workflow")  # fmt: skip
FLOW_TABLES = ("agent_flow", "orchestration", "agents")
# Go durations as AgenticGoKit writes them: "30s", "1m30s", "500ms", "2h" (Go's time units).
GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# AgenticGoKit's ``[orchestration] agents = [...]``: the agents of the mode, whichever key
# agentflow keeps them in (AgenticGoKit's orchestrator factory takes one list of agent names).
_AGENTS_KEY = {"sequential": "sequential_agents", "collaborative": "collaborative_agents"}
# The single-agent format's [memory] (AgenticGoKit's agent MemoryConfig) -> [agent_memory].
_MEMORY_KEYS = {"enabled": "enabled", "provider": "provider", "connection": "connection"}
_RAG_KEYS = {"max_tokens": "rag_max_context_tokens", "personal_weight": "rag_personal_weight",
             "knowledge_weight": "rag_knowledge_weight",
             "history_limit": "knowledge_max_results"}  # fmt: skip
# Its keys that AgenticGoKit's agents do not read (createMemoryProvider leaves them out).
_MEMORY_UNREAD = {"options": "AgenticGoKit's agents do not read it either; remove it"}


def flow_document(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """``raw`` as a flow document: unchanged, or translated; ConfigError saying what the
    file is when it is not a flow at all."""
    if ("name" in raw or "system_prompt" in raw) and not any(t in raw for t in FLOW_TABLES):
        return single_agent_flow(raw, source)
    if "orchestration" not in raw and "agents" not in raw and raw:
        raise ConfigError(
            f"{source}: a settings fragment with no flow: it has no [agents] and no "
            "[orchestration] (AgenticGoKit merges such tables into a project's "
            "agentflow.toml). Copy its tables into a flow file that defines [agents.NAME] and "
            "[orchestration] mode"
        )
    return agk_orchestration(raw, source)


def agk_orchestration(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """``raw`` with AgenticGoKit's spellings in ``[orchestration]`` as agentflow's keys.

    - ``agents = [...]``: the mode's agents (sequential: ``sequential_agents``; collaborative
      and parallel: ``collaborative_agents``; loop: ``loop_agent``, one agent). Mixed and
      route modes have no single list: refused, saying what to write.
    - ``timeout = "30s"``: a Go duration, the run's ``timeout_seconds``.
    - collaborative mode without ``collaborative_agents``: AgenticGoKit sends each event to
      every agent it has, so the list is every enabled agent in ``[agents]`` (none there: the
      loader says to list the agents that code registers).
    A spelling given beside the key it stands for must agree with it.
    """
    orch = raw.get("orchestration")
    if not isinstance(orch, dict):
        return raw
    orch = dict(orch)
    mode = orch.get("mode")
    mode = MODE_ALIASES.get(mode, mode) if isinstance(mode, str) else None  # None: schema's
    problems = []
    if "agents" in orch:
        problems += _agents_list(orch, orch.pop("agents"), mode)
    if "timeout" in orch:
        problems += _timeout(orch, orch.pop("timeout"))
    agents = raw.get("agents")
    if mode == "collaborative" and "collaborative_agents" not in orch and isinstance(agents, dict):
        enabled = [name for name, table in agents.items()
                   if not (isinstance(table, dict) and table.get("enabled") is False)]  # fmt: skip
        if enabled:
            orch["collaborative_agents"] = enabled
    if problems:
        raise ConfigError("\n".join(f"{source}: orchestration.{problem}" for problem in problems))
    return {**raw, "orchestration": orch}


def _agents_list(orch: dict[str, Any], names: Any, mode: Any) -> list[str]:
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        return [f"agents: must be a list of agent names (got {type(names).__name__})"]
    if mode == "mixed":
        return [
            "agents: mixed mode runs some agents together and then others in turn: list them "
            "in collaborative_agents and sequential_agents"
        ]
    if mode == "route":
        return [
            "agents: route mode has no list of agents: each event goes to its target (or "
            "entry_agent), then to the agent each one names in meta['route']; remove agents"
        ]
    if mode == "loop":
        if len(names) != 1:
            return [
                f"agents: loop mode repeats one agent, and {_short(names)} names {len(names)} "
                "(AgenticGoKit's loop runs only the first); name it in loop_agent"
            ]
        key, value = "loop_agent", names[0]
    elif mode in _AGENTS_KEY:
        key, value = _AGENTS_KEY[mode], names
    else:
        return []  # no mode, or an unknown one: the schema says so
    if orch.get(key, value) != value:
        return [
            f"agents: {_short(names)} and {key} = {_short(orch[key])} disagree; keep one of them"
        ]
    orch[key] = value
    return []


def _timeout(orch: dict[str, Any], value: Any) -> list[str]:
    seconds = duration_seconds(value)
    if seconds is None:
        return [
            f'timeout: {_short(value)} is not a duration; write it like "30s", "2m" or "500ms" '
            "(AgenticGoKit reads a bare number as nanoseconds), or use timeout_seconds"
        ]
    if orch.get("timeout_seconds") not in (None, 0, seconds):  # 0: AgenticGoKit's "unset"
        return [
            f"timeout: {_short(value)} and timeout_seconds = "
            f"{_short(orch['timeout_seconds'])} disagree; keep one of them"
        ]
    orch["timeout_seconds"] = seconds
    return []


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def duration_seconds(value: Any, units: dict[str, float] = GO_UNITS) -> float | None:
    """Seconds in a duration string of ``units`` (Go's: "30s", "1m30s", "500ms"), None if it
    is not one."""
    text = value.strip() if isinstance(value, str) else ""
    parts = _duration_part(tuple(units)).findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * units[unit] for number, unit in parts)


@functools.cache
def _duration_part(units: tuple[str, ...]) -> re.Pattern[str]:
    longest_first = sorted(units, key=len, reverse=True)  # "ms" before "m"
    return re.compile(rf"(\d+(?:\.\d+)?)({'|'.join(map(re.escape, longest_first))})")


def go_duration(value: Any, key: str, source: str) -> float:
    """Seconds in a Go duration string ("30s", "1m30s", "500ms")."""
    seconds = duration_seconds(value)
    if seconds is None:
        raise ConfigError(
            f'{source}: {key}: {value!r} is not a duration; write it like "30s", "2m" or "500ms"'
        )
    return seconds


def _off(raw: dict[str, Any], table: str) -> bool:
    value = raw.get(table)
    return value is None or (isinstance(value, dict) and value.get("enabled") is False)


def single_agent_flow(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """AgenticGoKit's single-agent file as a flow with one sequential agent.

    ``name`` names the flow and the agent, ``system_prompt`` and ``timeout`` are the agent's,
    ``[llm]`` is the flow's ``[llm]``; ``debug_mode = true`` sets the worker's log level to
    debug; ``[tracing]`` is always on (every run's trace is kept: ``agentflow trace``);
    ``[memory]`` is the flow's ``[agent_memory]`` and the agent has memory (see
    ``agent_memory``).
    Tools, streaming and ``[workflow]`` are refused unless disabled.
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
    memory: dict[str, Any] | None = None
    if isinstance(raw.get("memory"), dict):
        memory, lines = agent_memory(raw["memory"])
        problems += lines
    elif "memory" in raw:
        problems.append("memory: must be a table ([memory] provider = ...)")
    for table, instead in (
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
    if memory is not None:
        flow["agent_memory"] = memory
        agent["memory_enabled"] = memory.get("enabled", True)
    if raw.get("debug_mode") is True:
        flow["logging"] = {"level": "debug"}
    elif raw.get("debug_mode") not in (None, False):
        raise ConfigError(f"{source}: debug_mode: must be true or false")
    return flow


def agent_memory(table: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The single-agent format's ``[memory]`` as ``[agent_memory]``, with the meaning
    AgenticGoKit's agents give it: ``provider`` (required, as there) and ``connection``;
    ``[memory.rag]`` turns on RAG and the knowledge base, ``max_tokens``, ``personal_weight``
    and ``knowledge_weight`` are its ``rag_*`` keys and ``history_limit`` the knowledge
    results (10 unless set). ``enabled = false``: the agent has no memory. Errors name the
    keys as written."""
    if table.get("enabled") is False:
        return {"enabled": False}, []
    memory: dict[str, Any] = {"enable_rag": False, "enable_knowledge_base": False,
                              "knowledge_max_results": 10}  # fmt: skip
    written: dict[str, str] = {}
    problems = [] if "provider" in table else [
        f"memory.provider: required, as in AgenticGoKit; allowed: {', '.join(MEMORY_PROVIDERS)}"
    ]  # fmt: skip
    rag = table.get("rag")
    entries = [(f"memory.{k}", _MEMORY_KEYS, k, v) for k, v in table.items() if k != "rag"]
    if isinstance(rag, dict):
        memory.update(enable_rag=True, enable_knowledge_base=True)
        entries += [(f"memory.rag.{k}", _RAG_KEYS, k, v) for k, v in rag.items()]
    elif rag is not None:
        problems.append("memory.rag: must be a table ([memory.rag] max_tokens = ...)")
    for path, keys, key, value in entries:
        new = keys.get(key)
        if new is None and key in _MEMORY_UNREAD and keys is _MEMORY_KEYS:
            problems.append(f"{path}: {_MEMORY_UNREAD[key]}")
        elif new is None:
            allowed = ", ".join(keys) + ("" if keys is _RAG_KEYS else ", rag")
            problems.append(f"{path}: not a key of the agent's [{path.rsplit('.', 1)[0]}]; "
                            f"allowed: {allowed}")  # fmt: skip
        elif not (key == "history_limit" and type(value) is int and value == 0):  # 0: 10
            memory[new], written[new] = value, path
    try:
        AgentMemoryConfig.model_validate(memory)
    except ValidationError as err:
        for error in err.errors():
            loc = str(error["loc"][0]) if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{written.get(loc, 'memory')}: {message}")
    return memory, problems
