"""Reading agentflow.toml: TOML, then the schema, then the cross-references, and one clear
message per problem (file, key path, what is wrong, what is allowed)."""

from __future__ import annotations

import reprlib
import sys
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from agentflow.config._base import (
    DEFAULT_CONFIG_FILE,
    HOOK_POINTS,
    agk_unsupported,
    did_you_mean,
)
from agentflow.config.code_checks import declare_code_agents
from agentflow.config.expression_checks import expression_problems
from agentflow.config.flow import FlowConfig
from agentflow.config.formats import flow_document
from agentflow.config.handlers import (
    compensation_problems,
    handler_problem,
    llm_import_problems,
)
from agentflow.config.llm_checks import llm_problems
from agentflow.config.memory import memory_unsupported
from agentflow.config.nested import Nesting, load_nested
from agentflow.config.old_memory import OldTables, read_old_tables
from agentflow.config.registered import REGISTRY, import_agent_modules, is_code
from agentflow.config.resolve import resolve_llm
from agentflow.errors import ConfigError
from agentflow.limits import MAX_SNAPSHOT_BYTES, key_part

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib


def load_config(
    path: str | Path = DEFAULT_CONFIG_FILE,
    *,
    check_handlers: bool = True,
    nesting: Nesting | None = None,
) -> FlowConfig:
    """Read, validate and cross-check an agentflow.toml.

    Raises ConfigError with one message (file, key path, what is wrong, what is allowed).
    With ``check_handlers`` every enabled agent's handler is imported, so a typo in a module
    path fails here rather than inside a running flow.
    """
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: file not found (pass --config PATH)") from None
    except OSError as err:
        raise ConfigError(f"{file}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{file}: not UTF-8 text (byte {err.start}): TOML files must be saved as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: invalid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(
            f"{file}: arrays or inline tables nested too deeply to read (keep it to a few levels)"
        ) from None
    return parse_config(raw, source=str(file), base_dir=file.parent, check_handlers=check_handlers,
                        nesting=(nesting or Nesting()).entering(file, str(file)))  # fmt: skip


def parse_config(
    raw: dict[str, Any],
    *,
    source: str = DEFAULT_CONFIG_FILE,
    base_dir: Path | None = None,
    check_handlers: bool = False,
    nesting: Nesting | None = None,
) -> FlowConfig:
    """Validate an already-parsed TOML document (see load_config); ``nesting``: where the
    document sits in a tree of flows inside flows (agentflow/config/nested.py)."""
    # AgenticGoKit files that are not a flow: say what they are (or translate them).
    raw = flow_document(raw, source)
    raw, old = read_old_tables(raw)  # AgenticGoKit's [memory] and [rag]: [agent_memory]
    try:
        config = FlowConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(source, err, old)) from None
    config = declare_code_agents(config, _code_agents(config))
    problems = list(_reference_problems(config)) + list(_retry_problems(config))
    problems += _memory_problems(config, old)
    problems += expression_problems(config)  # CEL `when`s and the agents routes name
    if not problems and (size := len(config.model_dump_json())) > MAX_SNAPSHOT_BYTES:
        problems.append(
            f"the flow's settings are {size / 1024:.0f} KB as JSON; at most "
            f"{MAX_SNAPSHOT_BYTES // 1024} KB, since they travel in every workflow input and "
            "Temporal payloads are limited to 2 MB (shorten system_prompt and descriptions, or "
            "keep long texts in files the agents read)"
        )
    if check_handlers and not problems:
        # Imports user code: only when asked.
        for name in config.enabled_agents():
            problems += compensation_problems(config, name, base_dir)  # a saga's undo step
            handler = config.agents[name].handler
            if is_code(handler):
                continue
            if handler is not None and (problem := handler_problem(handler, base_dir)):
                problems.append(f"agents.{name}.handler: {problem}")
            problems += llm_import_problems(config, name, base_dir)
        for point in HOOK_POINTS:
            for index, path in enumerate(getattr(config.hooks, point)):
                if not is_code(path) and (problem := handler_problem(path, base_dir)):
                    problems.append(f"hooks.{point}[{index}]: {problem}")
    if check_handlers and not problems and config.agent_flow.agent_modules:
        try:  # [agent_flow] agent_modules: modules that register agents with @agentflow.agent
            import_agent_modules(config.agent_flow.agent_modules, base_dir)
            config = REGISTRY.bind(config, source)
        except ConfigError as err:
            problems.append(f"agent_flow.agent_modules: {err}")
    if problems:
        raise ConfigError("\n".join(f"{source}: {problem}" for problem in problems))
    return load_nested(config, source=source, base_dir=base_dir, check_handlers=check_handlers,
                       nesting=nesting or Nesting(shown=(source,)), load=load_config)  # fmt: skip


def _code_agents(config: FlowConfig) -> list[str]:
    """The agents code must register: named by the orchestration or the error routing but
    absent from [agents], or in [agents] without a handler and without an LLM provider."""
    orch = config.orchestration
    names = [*orch.collaborative_agents, *orch.sequential_agents, orch.loop_agent]
    names += [orch.entry_agent, *config.error_routing.handlers().values()]
    named = [name for name in names if name and name not in config.agents]
    unserved = [
        name
        for name, spec in config.agents.items()
        if spec.handler is None
        and spec.flow is None
        and not spec.auto_llm
        and resolve_llm(config, name) is None
    ]
    return named + unserved


def _reference_problems(config: FlowConfig) -> Iterable[str]:
    orch = config.orchestration
    defined = ", ".join(config.agents) or "none"

    def check(key: str, name: str) -> str | None:
        if name not in config.agents:
            return (
                f"orchestration.{key}: agent {name!r} is not defined"
                f"{did_you_mean(name, config.agents)}; defined agents: {defined}"
            )
        if not config.agents[name].enabled:
            return (
                f"orchestration.{key}: agent {name!r} has enabled = false; enable it or remove it"
            )
        return None

    needs: dict[str, tuple[str, ...]] = {
        "sequential": ("sequential_agents",),
        # Unset: every enabled agent in [agents] (formats.py), else every agent code registers.
        "collaborative": (),
        "mixed": ("collaborative_agents", "sequential_agents"),
        "loop": ("loop_agent",),
        "route": (),
    }
    for key in needs[orch.mode]:
        if not getattr(orch, key):
            what = "name the agent to repeat" if key == "loop_agent" else "list the agents to run"
            yield f"orchestration.{key}: required for mode = {orch.mode!r} ({what})"
    for key in ("collaborative_agents", "sequential_agents"):
        names: list[str] = getattr(orch, key)
        for index, name in enumerate(names):
            if names.index(name) != index:
                yield f"orchestration.{key}: agent {name!r} is listed twice"
            elif problem := check(f"{key}[{index}]", name):
                yield problem
    for key in ("loop_agent", "entry_agent"):
        value: str | None = getattr(orch, key)
        if value and (problem := check(key, value)):
            yield problem
    for key, agent in config.error_routing.handlers().items():
        if problem := check(key, agent):
            yield "error_routing." + problem.removeprefix("orchestration.")
    # Route mode with no [agents] at all: code registers the agents it routes to.
    if orch.mode == "route" and config.agents and not config.enabled_agents():
        yield "agents: route mode needs at least one enabled agent"
    # LLM agents (providers, models, tools, schemas): agentflow/config/llm_checks.py.
    yield from llm_problems(config)


def _retry_problems(config: FlowConfig) -> Iterable[str]:
    """Temporal refuses a retry policy whose maximum interval is below its initial one."""
    tables = {"orchestration.retry": config.orchestration.retry}
    tables |= {f"agents.{name}.retry": a.retry for name, a in config.agents.items() if a.retry}
    for key, retry in tables.items():
        if retry.maximum_interval_seconds < retry.initial_interval_seconds:
            yield (
                f"{key}.maximum_interval_seconds: {retry.maximum_interval_seconds:g} is less "
                f"than initial_interval_seconds ({retry.initial_interval_seconds:g}); Temporal "
                "refuses such a retry policy, so raise maximum_interval_seconds"
            )


def _memory_problems(config: FlowConfig, old: OldTables) -> list[str]:
    """An agent cannot remember in a flow whose memory is off."""
    memory = config.agent_memory
    if memory is None or memory.enabled:
        return []
    switch = old.shown("agent_memory.enabled")
    return [
        f"agents.{name}.memory_enabled: true, but {switch} = false: turn the flow's memory "
        "on (or remove memory_enabled)"
        for name, agent in config.agents.items()
        if agent.memory_enabled
    ]


def _describe(source: str, err: ValidationError, old: OldTables | None = None) -> str:
    lines = []
    old = old or OldTables()
    for error in err.errors():
        loc = tuple(error["loc"])
        key = old.shown(_key_path(loc)) or "(top level)"
        if error["type"] == "extra_forbidden" and len(loc) == 1 and str(loc[0]) in old.problems:
            lines += [f"{source}: {line}" for line in old.problems[str(loc[0])]]
        elif error["type"] == "extra_forbidden" and (
            instead := memory_unsupported(loc) or agk_unsupported(loc)
        ):
            lines.append(f"{source}: {key}: AgenticGoKit's key is not supported; {instead}")
        elif error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            hint = did_you_mean(str(loc[-1]), allowed)
            lines.append(f"{source}: {key}: unknown key{hint}; allowed keys: {', '.join(allowed)}")
        elif error["type"] == "missing":
            lines.append(f"{source}: {key}: required key is missing")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            value = error.get("input")
            # An unknown mode or provider already quotes the value; a key is in the path.
            quoted = isinstance(value, str) and (repr(value) in message or loc[-1] == "[key]")
            # A whole table is not echoed (it may hold a connection string with a password).
            quoted = quoted or isinstance(value, dict)
            got = "" if quoted else f" (got {_shown(value)})"
            lines.append(f"{source}: {key}: {message}{got}")
    return "\n".join(lines)


def _key_path(loc: tuple[int | str, ...]) -> str:
    # "[key]": pydantic's marker for a dict key's own error (a too-long agent name).
    return "".join(key_part(part) for part in loc if part != "[key]").removeprefix(".")


# A wrong value is quoted in the message, but never a whole 10 MB string or a deep array.
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlevel = 3


def _shown(value: object) -> str:
    return _SHORT.repr(value)


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys a table at ``loc`` accepts, found by walking the models along the path."""
    current: Any = FlowConfig
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Optional[X] -> X."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation
