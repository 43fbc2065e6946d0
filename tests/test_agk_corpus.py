"""Every TOML snippet with an ``[orchestration]`` table in AgenticGoKit's own docs
(tests/agk_corpus/, where each came from in manifest.json), loaded as ``agentflow validate``
loads it: at least two in three of all the snippets validate (issue 21's bar), and each other
snippet is refused with exactly one line per problem, every line in ``REFUSED`` below, so a
new or changed message is noticed."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from agentflow.config import load_config, parse_config
from agentflow.config.registered import CodeRegistry, is_code
from agentflow.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CORPUS = Path(__file__).parent / "agk_corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
SNIPPETS = sorted(path.stem for path in CORPUS.glob("*.toml"))

# Snippet -> (key path, part of the message) for each line of its refusal, in order.
REFUSED: dict[str, list[tuple[str, str]]] = {
    "AgenticGoKit--docs--guides--Configuration--L20": [
        ("error_routing.validation_errors", "route failures by kind with category_handlers = {"),
        ("error_routing.timeout_errors", "route failures by kind with category_handlers = {"),
        ("error_routing.critical_errors", "route failures by kind with category_handlers = {"),
        (
            "error_routing.default_error_handler",
            "the agent of every other failure is error_handler",
        ),
        ("mcp.connection_timeout", "Input should be a valid integer (got '30s')"),
        ("mcp.servers", "Input should be a valid list"),
        ("mcp.cache_enabled", "set [mcp.cache] enabled"),
        ("mcp.cache_ttl", "set [mcp.cache] default_ttl_ms"),
        ("name", "the flow's name is [agent_flow] name"),
        ("version", "the flow's version is [agent_flow] version"),
        ("description", "the flow's description is [agent_flow] description"),
        ("log_level", "set [logging] level"),
        ("visualization", "draw the flow with agentflow graph"),
        ("provider", "the LLM is [llm] provider and model; a provider's own"),
        ("metrics", "metrics and traces are OpenTelemetry's: set [telemetry]"),
    ],
    "AgenticGoKit--docs--guides--agent-configuration-system--L46": [
        (
            "agents.researcher.rate_limit.burst_size",
            "not supported: the limit is Temporal's task-queue rate",
        ),
        ("agents.researcher.metadata", "keep descriptive text in description"),
    ],
    "AgenticGoKit--docs--guides--configuration-system-comprehensive--L255": [
        ("orchestration.sequential", "there are no per-mode tables: a sequential run passes each"),
    ],
    "AgenticGoKit--docs--guides--configuration-system-comprehensive--L269": [
        (
            "orchestration.collaborative",
            "consensus, voting and discussion rounds are not supported:",
        ),
    ],
    "AgenticGoKit--docs--guides--configuration-system-comprehensive--L284": [
        ("orchestration.parallel", "there are no per-mode tables: set max_concurrency and"),
    ],
    "AgenticGoKit--docs--guides--configuration-system-comprehensive--L298": [
        ("orchestration.mode", "mode 'custom': custom orchestrators (AgenticGoKit's"),
        (
            "orchestration.orchestrator_class",
            "custom orchestrators (AgenticGoKit's orchestrator_class)",
        ),
        ("orchestration.custom", "custom orchestrators (AgenticGoKit's orchestrator_class)"),
    ],
    "AgenticGoKit--docs--guides--configuration-system-comprehensive--L736": [
        ("orchestration.sequential", "there are no per-mode tables: a sequential run passes each"),
        ("mcp.timeout_seconds", "AgenticGoKit's [mcp] has connection_timeout_ms and"),
        ("rag.document_processing.supported_formats", "'docx', 'html' not known; the kinds are"),
        ("memory.collection_name", "no [agent_memory] equivalent: one store holds"),
        ("memory.max_entries", "no [agent_memory] equivalent: memory is not capped"),
        ("memory.ttl_seconds", "no [agent_memory] equivalent: records do not expire"),
        ("retry_policy", "set agents.NAME.retry_policy, or [orchestration.retry] for"),
        ("rate_limit", "set agents.NAME.rate_limit"),
        ("monitoring", "metrics and traces are OpenTelemetry's: set [telemetry]"),
    ],
    "AgenticGoKit--docs--guides--configuration-system-comprehensive--L862": [
        ("debug", 'set [logging] level = "debug"'),
    ],
    "AgenticGoKit--docs--guides--hardcoded-to-config-migration--L1079": [
        ("orchestration.sequential", "there are no per-mode tables: a sequential run passes each"),
        ("memory.max_entries", "no [agent_memory] equivalent: memory is not capped"),
        ("memory.ttl_seconds", "no [agent_memory] equivalent: records do not expire"),
        ("retry_policy", "set agents.NAME.retry_policy, or [orchestration.retry] for"),
        ("monitoring", "metrics and traces are OpenTelemetry's: set [telemetry]"),
    ],
    "AgenticGoKit--docs--guides--setup--orchestration-configuration--L514": [
        ("orchestration.mode", "required key is missing"),
    ],
    "AgenticGoKit--docs--guides--setup--orchestration-configuration--L524": [
        ("orchestration.mode", "required key is missing"),
    ],
    "AgenticGoKit--docs--guides--setup--orchestration-configuration--L673": [
        ("orchestration.mode", "required key is missing"),
    ],
    "AgenticGoKit--docs--tutorials--getting-started--building-workflows--L114": [
        ("mcp.timeout_seconds", "AgenticGoKit's [mcp] has connection_timeout_ms and"),
    ],
    "AgenticGoKit--docs--tutorials--getting-started--building-workflows--L539": [
        (
            "orchestration.fallback_strategy",
            "a run stops at an agent that still fails after its retries;",
        ),
        (
            "agents.resilient_agent.error_recovery",
            "a failed agent is retried (retry_policy), then its failure",
        ),
        ("agents.resilient_agent.max_retries", "write agents.NAME.retry_policy.max_retries (or"),
    ],
    "AgenticGoKit--docs--tutorials--getting-started--building-workflows--L580": [
        (
            "orchestration.parallel_groups",
            "stages of parallel groups are not supported: mixed mode",
        ),
        ("resources", "agentflow sets no memory or CPU limits; limit concurrent"),
    ],
    "AgenticGoKit--docs--tutorials--getting-started--multi-agent-basics--L277": [
        (
            "orchestration.routing_rules",
            "routing by patterns in the event's text is not supported:",
        ),
        (
            "orchestration.default_agent",
            "there are no routing rules to fall back from; entry_agent",
        ),
    ],
    "AgenticGoKit--docs--tutorials--getting-started--multi-agent-basics--L501": [
        ("orchestration.fallback_agent", "route failed agents to an agent with [error_routing]"),
    ],
    "AgenticGoKit--docs--tutorials--getting-started--next-steps--L404": [
        ("mcp", "servers[0] (web-search): set type = stdio, sse or http"),
    ],
    "AgenticGoKit--docs--tutorials--getting-started--tool-integration--L123": [
        ("mcp.timeout_seconds", "AgenticGoKit's [mcp] has connection_timeout_ms and"),
    ],
    "AgenticGoKit--docs--tutorials--getting-started--troubleshooting--L616": [
        ("orchestration.mode", "required key is missing"),
        ("orchestration.max_concurrent_agents", "AgenticGoKit reads it from [runtime]"),
    ],
    "AgenticGoKit--docs--tutorials--getting-started--troubleshooting--L654": [
        ("orchestration.mode", "required key is missing"),
        ("orchestration.max_concurrent_agents", "AgenticGoKit reads it from [runtime]"),
        ("agent_memory.enable_compression", "memories are not compressed; conversation_memory"),
        ("agent_memory.cleanup_interval", "nothing is cleaned up on a schedule; agentflow"),
    ],
    "kunalkushwaha-agenticgokit--README--L175": [
        ("orchestration.sequential_agents", "required for mode = 'sequential' (list the"),
    ],
    "kunalkushwaha-agenticgokit--examples--02-multi-agent-collab--README--L328": [
        ("agents.researcher.temperature", "an agent's temperature is agents.NAME.llm.temperature"),
        ("agents.analyzer.temperature", "an agent's temperature is agents.NAME.llm.temperature"),
        ("agents.writer.temperature", "an agent's temperature is agents.NAME.llm.temperature"),
    ],
}


def problems(name: str) -> list[str] | None:
    """The refusal's lines without the file name, or None when the snippet validates."""
    path = CORPUS / f"{name}.toml"
    try:
        load_config(path, check_handlers=False)
    except ConfigError as err:
        lines = str(err).splitlines()
        assert all(line.startswith(f"{path}: ") for line in lines), lines
        return [line.removeprefix(f"{path}: ") for line in lines]
    return None


def test_manifest_names_each_snippet_once_with_its_origin() -> None:
    assert sorted(entry["file"].removesuffix(".toml") for entry in MANIFEST) == SNIPPETS
    texts = [(CORPUS / entry["file"]).read_text(encoding="utf-8") for entry in MANIFEST]
    assert len(set(texts)) == len(texts)  # deduplicated by content
    for entry, text in zip(MANIFEST, texts, strict=True):
        assert re.search(r"^\s*\[orchestration\]", text, re.MULTILINE), entry["file"]
        for origin in (entry, *entry["also"]):
            assert origin["repo"] in ("AgenticGoKit/AgenticGoKit", "kunalkushwaha/agenticgokit")
            assert re.fullmatch(r"[0-9a-f]{40}", origin["commit"]) and origin["line"] > 0
            assert origin["path"].endswith(".md")
    assert set(REFUSED) <= set(SNIPPETS)


@pytest.mark.parametrize("name", SNIPPETS)
def test_snippet_validates_or_is_refused_line_by_line(name: str) -> None:
    lines = problems(name)
    expected = REFUSED.get(name)
    if expected is None:
        assert lines is None, f"{name} no longer validates: {lines}"
        return
    assert lines is not None, f"{name} validates now: take it out of REFUSED"
    assert len(lines) == len(expected), lines
    for line, (key, part) in zip(lines, expected, strict=True):
        assert line.startswith(f"{key}: ") and part in line, (line, key, part)


def test_two_in_three_validate() -> None:
    valid = len(SNIPPETS) - len(REFUSED)
    assert valid * 3 >= 2 * len(SNIPPETS), (valid, len(SNIPPETS))
    # Every refusal names what agentflow lacks or what to write instead; none is a bare
    # "unknown key".
    for name, rows in REFUSED.items():
        assert not any(part.startswith("unknown key") for _, part in rows), name


def test_memory_snippets_mean_what_agenticgokit_means() -> None:
    """The agent memory tutorial: pgvector at [agent_memory.pgvector] connection_string,
    overlap_size, and agents with memory_enabled."""
    config = load_config(
        CORPUS / "AgenticGoKit--docs--tutorials--getting-started--adding-memory--L160.toml"
    )
    memory = config.agent_memory
    assert memory is not None and memory.provider == "pgvector"
    assert memory.store_connection() == "postgresql://agent:agentpass@localhost:5432/agentdb"
    assert (memory.chunk_size, memory.chunk_overlap, memory.max_results) == (1000, 200, 5)
    assert all(agent.memory_enabled for agent in config.agents.values())
    # The older [memory] table: its keys moved to [agent_memory] (the file is refused for
    # its sequence, which lists no agents).
    raw = _raw("kunalkushwaha-agenticgokit--README--L175")
    raw["orchestration"]["sequential_agents"] = ["a"]
    raw["agents"] = {"a": {"system_prompt": "x"}}
    config = parse_config(raw)
    assert config.agent_memory is not None and config.agent_memory.provider == "sqlite"
    assert config.agent_memory.enable_rag and config.agent_memory.embedding.provider == "ollama"


def test_tools_enabled_means_what_agenticgokit_means() -> None:
    """tools_enabled = true (the building-workflows tutorial): the agent may call the tools of
    every enabled [[mcp.servers]], agentflow's default; false: it calls none."""
    name = "AgenticGoKit--docs--tutorials--getting-started--building-workflows--L450"
    config = load_config(CORPUS / f"{name}.toml", check_handlers=False)
    assert all(agent.mcp_servers is None and not agent.tools for agent in config.agents.values())
    raw = _raw(name)
    raw["agents"]["collector"]["tools_enabled"] = False
    config = parse_config(raw, check_handlers=False)
    assert config.agents["collector"].mcp_servers == []
    assert config.agents["validator"].mcp_servers is None
    assert "tools_enabled" not in config.model_dump_json()  # read into mcp_servers


def _raw(name: str) -> dict[str, Any]:
    return tomllib.loads((CORPUS / f"{name}.toml").read_text(encoding="utf-8"))


def test_the_spellings_mean_what_agenticgokit_means() -> None:
    # [orchestration] agents = [...] in sequential mode: the sequence.
    config = load_config(
        CORPUS / "AgenticGoKit--docs--guides--configuration-system-comprehensive--L36.toml"
    )
    assert config.orchestration.sequential_agents == ["researcher", "writer"]
    # Collaborative without collaborative_agents: every agent the file has.
    config = load_config(
        CORPUS / "AgenticGoKit--docs--tutorials--getting-started--agent-configuration--L48.toml"
    )
    assert config.orchestration.collaborative_agents == ["agent_name"]
    # Agents only named by the orchestration are registered in code.
    config = load_config(
        CORPUS / "AgenticGoKit--docs--guides--setup--orchestration-configuration--L108.toml"
    )
    assert config.orchestration.sequential_agents == ["collector", "processor", "formatter"]
    assert all(is_code(config.agents[name].handler) for name in config.agents)
    # Collaborative with neither a list nor [agents]: every agent code registers.
    config = load_config(
        CORPUS / "AgenticGoKit--docs--guides--setup--orchestration-configuration--L151.toml"
    )
    registry = CodeRegistry()
    for name in ("a", "b"):
        registry.register_agent(name, print)
    assert registry.bind(config).orchestration.collaborative_agents == ["a", "b"]
    # A route flow with no [agents]: code registers the agents it routes to.
    config = load_config(
        CORPUS / "AgenticGoKit--docs--tutorials--getting-started--orchestration-basics--L60.toml"
    )
    assert config.mode == "route" and not config.agents
    raw = tomllib.loads(
        (
            CORPUS / "AgenticGoKit--docs--guides--setup--orchestration-configuration--L746.toml"
        ).read_text()
    )
    config = load_config(
        CORPUS / "AgenticGoKit--docs--guides--setup--orchestration-configuration--L746.toml"
    )
    assert config.orchestration.loop_agent == raw["orchestration"]["loop_agent"]
    assert config.orchestration.max_iterations == raw["orchestration"]["max_iterations"]
