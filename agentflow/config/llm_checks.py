"""Cross-checks of the LLM side of a flow file, after the schema: providers that exist, LLM
agents that have a model, keys that only LLM agents use, MCP server names, output schemas.
Each problem is one line: key path, what is wrong, what is allowed."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from agentflow.config._base import did_you_mean
from agentflow.config.flow import FlowConfig
from agentflow.config.llm import PROVIDER_ALIASES, PROVIDER_KINDS, provider_kind
from agentflow.config.resolve import resolve_llm

LLM_ONLY_KEYS = ("llm", "tools", "mcp_servers", "output_schema")


def llm_problems(config: FlowConfig) -> Iterable[str]:
    yield from _provider_problems(config)
    llm_agents: list[str] = []
    for name in config.enabled_agents():
        spec = config.agents[name]
        key = f"agents.{name}"
        if spec.retry_policy is not None and (spec.retry or spec.retry_attempts is not None):
            yield (
                f"{key}.retry_policy: set either retry_policy (AgenticGoKit's keys) or "
                "retry / retry_attempts, not both"
            )
        runs_code = spec.handler is not None or spec.flow is not None
        if spec.auto_llm is False and not runs_code:
            yield (
                f"{key}.auto_llm: false, and the agent has no handler, so nothing would run; "
                'set handler = "package.module:function" or remove auto_llm'
            )
        if spec.auto_llm and runs_code:
            what = "handler" if spec.handler is not None else "flow"
            yield (
                f"{key}.auto_llm: true makes the agent ask the LLM, but it also has {what}; "
                "keep one of them"
            )
        if not config.is_llm_agent(name):
            for extra in LLM_ONLY_KEYS:
                if getattr(spec, extra):
                    yield (
                        f"{key}.{extra}: only LLM agents (no handler, a system_prompt) use it; "
                        "this agent runs its handler"
                    )
            if not spec.stream:  # true is every agent's default; false means a model reply
                yield (
                    f"{key}.stream: only LLM agents (no handler, a system_prompt) use it; "
                    "this agent runs its handler (remove stream = false)"
                )
            continue
        llm_agents.append(name)
        yield from _agent_tool_problems(config, name)
    yield from _model_problems(config, llm_agents)


def _provider_problems(config: FlowConfig) -> Iterable[str]:
    for name, table in config.providers.items():
        kind = table.type or provider_kind(name)
        if kind is None:
            yield (
                f"providers.{name}: unknown provider {name!r}"
                f"{did_you_mean(name, PROVIDER_KINDS)}; name the table after a provider "
                f'({", ".join(PROVIDER_KINDS)}) or set type = "..." in it'
            )
        elif kind == "openai-compatible" and not table.base_url:
            yield (
                f"providers.{name}.base_url: required for an openai-compatible provider "
                '(e.g. "http://127.0.0.1:8000/v1")'
            )
    allowed = sorted({*PROVIDER_KINDS, *config.providers})
    named = [("agent_flow.provider", config.agent_flow.provider)]
    if config.llm is not None:
        named.append((f"llm.{config.llm.provider_key}", config.llm.provider))
    named += [
        (f"agents.{name}.llm.provider", spec.llm.provider or "")
        for name, spec in config.agents.items()
        if spec.llm is not None
    ]
    for key, value in named:
        if value and value not in config.providers and provider_kind(value) is None:
            choices = [*allowed, *PROVIDER_ALIASES]
            yield (
                f"{key}: unknown provider {value!r}{did_you_mean(value, choices)}; "
                f"allowed: {', '.join(allowed)}"
            )


def _model_problems(config: FlowConfig, llm_agents: list[str]) -> Iterable[str]:
    no_model: list[str] = []
    for name in llm_agents:
        resolved = resolve_llm(config, name)
        if resolved is None:
            yield (
                f"agents.{name}: no handler and no [llm] provider; set "
                f'handler = "package.module:function" or configure [llm] provider '
                f"({', '.join(PROVIDER_KINDS)}) with a system_prompt"
            )
        elif resolved.kind in PROVIDER_KINDS and not resolved.model:  # unknown: said above
            no_model.append(name)
    if no_model:
        yield f'llm.model: required by the LLM agents {", ".join(no_model)} (e.g. "gemma3:1b")'


def _agent_tool_problems(config: FlowConfig, name: str) -> Iterable[str]:
    spec = config.agents[name]
    servers = {server.name: server for server in config.mcp.servers}
    for index, server in enumerate(spec.mcp_servers or []):
        key = f"agents.{name}.mcp_servers[{index}]"
        if server not in servers:
            defined = ", ".join(servers) or "none"
            yield (
                f"{key}: MCP server {server!r} is not defined in [[mcp.servers]]"
                f"{did_you_mean(server, servers)}; defined: {defined}"
            )
        elif not (config.mcp.enabled and servers[server].enabled):
            yield f"{key}: MCP server {server!r} is disabled (enabled = false in [mcp] or it)"
    if spec.output_schema is not None and (problem := schema_problem(spec.output_schema)):
        yield f"agents.{name}.output_schema: {problem}"


def schema_problem(schema: dict[str, Any] | str) -> str | None:
    """What is wrong with an output_schema, None if it looks usable. A "module:Model" path
    is only checked for shape here (importing it is the handler check's job)."""
    if isinstance(schema, str):
        text = schema.strip()
        if not text.startswith("{"):
            module, sep, attr = text.partition(":")
            if sep and module.strip() and attr.strip():
                return None
            return (
                f"{schema!r} is neither a JSON Schema (a table, or JSON text) nor a pydantic "
                "model path like 'package.module:Model'"
            )
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as err:
            return f"is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})"
        if not isinstance(parsed, dict):
            return "must be a JSON object (a JSON Schema)"
        schema = parsed
    import jsonschema  # only when a flow has a schema to check

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as err:
        where = "/".join(str(part) for part in err.absolute_path)
        return f"not a valid JSON Schema{f' at {where}' if where else ''}: {err.message}"
    return None
