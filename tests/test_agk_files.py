"""AgenticGoKit's own config files (tests/agk_files/, origin in its README.md) load as
written, mean what they mean there, and the files that are not flows say what they are.

``agk_config`` is the helper for running them: it points their LLM providers at a local URL.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from agentflow.config import FlowConfig, load_config, parse_config, resolve_llm
from agentflow.config.code_checks import unbound_agents
from agentflow.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

AGK = Path(__file__).parent / "agk_files"
# The files that define their agents in TOML (testAgent-v2 too: its pgvector memory has a
# test of its own).
FLOW_FILES = ("testBot", "researchAgent", "researchAgent1", "testAgent-v1", "testAgent-old")


def agk_raw(name: str) -> dict[str, Any]:
    return tomllib.loads((AGK / f"{name}.toml").read_text(encoding="utf-8"))


def agk_config(name: str, base_url: str | None = None) -> FlowConfig:
    """An AgenticGoKit file as a FlowConfig; ``base_url``: every provider it declares (and
    its [llm]) answers there, e.g. a local fake server."""
    raw = agk_raw(name)
    if base_url is not None:
        for table in raw.get("providers", {}).values():
            table["base_url"] = base_url
    return parse_config(raw, source=f"{name}.toml", base_dir=AGK, check_handlers=True)


@pytest.mark.parametrize("name", FLOW_FILES)
def test_flow_files_validate_as_written(name: str) -> None:
    config = load_config(AGK / f"{name}.toml")
    assert config.enabled_agents() and all(config.is_llm_agent(a) for a in config.agents)
    for agent in config.agents:
        resolved = resolve_llm(config, agent)
        assert resolved is not None and resolved.model
        # retry_policy (3 retries, 1 s doubling up to 10 s) is the agent's Temporal policy.
        assert config.max_attempts(agent) == 4
        retry = config.retry_settings(agent)
        assert (retry.initial_interval_seconds, retry.maximum_interval_seconds) == (1.0, 10.0)
        # [runtime] timeout_seconds = 30 is every agent's default timeout.
        assert config.agents[agent].timeout_seconds == 30
    assert config.runtime.max_concurrent_agents == 10
    # orchestration.timeout_seconds = 0 is "the default"; researchAgent1 sets 10.
    assert config.orchestration.timeout_seconds == (10 if name == "researchAgent1" else 300)


ORCH_ONE_LLM_AGENT = (
    '[orchestration]\nmode = "sequential"\nsequential_agents = ["a"]\n'
    '[agents.a]\nsystem_prompt = "Answer."\n'
)


def test_testbot_resolves_like_agentickgokit() -> None:
    config = agk_config("testBot", "http://127.0.0.1:9/")
    first, second = resolve_llm(config, "agent1"), resolve_llm(config, "agent2")
    assert first is not None and second is not None
    # [llm] model beats [providers.ollama] model; agents.X.llm overrides temperature.
    assert (first.kind, first.model, first.base_url) == ("ollama", "smollm2:latest",
                                                         "http://127.0.0.1:9/")  # fmt: skip
    assert (first.temperature, second.temperature, first.max_tokens) == (0.7, 0.5, 2000)
    assert first.timeout_seconds == 30


def test_provider_settings_survive_the_snapshot_round_trip(tmp_path: Path) -> None:
    """Workflows resolve an agent's LLM from the config snapshot in their input: a [llm] key
    left unset must not turn into [llm]'s default there and override [providers.X]."""
    path = tmp_path / "flow.toml"
    path.write_text(
        '[agent_flow]\nprovider = "ollama"\n[providers.ollama]\ntemperature = 0.2\n'
        'timeout_seconds = 15\n[llm]\nmodel = "m"\n' + ORCH_ONE_LLM_AGENT,
        encoding="utf-8",
    )
    loaded = load_config(path)
    snapshot = FlowConfig.model_validate_json(loaded.model_dump_json())
    for config in (loaded, snapshot):
        resolved = resolve_llm(config, "a")
        assert resolved is not None
        assert (resolved.temperature, resolved.timeout_seconds) == (0.2, 15)


def test_openai_key_stays_a_template_in_the_snapshot() -> None:
    config = agk_config("researchAgent")
    resolved = resolve_llm(config, "researcher")
    assert resolved is not None
    assert (resolved.kind, resolved.model, resolved.temperature) == ("openai", "gpt-4", 0.3)
    assert resolved.api_key == "${OPENAI_API_KEY}"
    assert "${OPENAI_API_KEY}" not in config.model_dump_json()  # resolved at run time only
    # [mcp]: tcp is only the default transport, and every server is disabled.
    assert config.mcp.enabled and not config.mcp.active_servers()
    assert config.mcp.connection_timeout_ms == 5000


def test_pgvector_memory_means_what_agenticgokit_means() -> None:
    config = load_config(AGK / "testAgent-v2.toml")
    memory = config.agent_memory
    assert memory is not None and memory.provider == "pgvector"
    assert memory.store_connection().startswith("postgres://user:password@localhost:15432/")
    assert (memory.max_results, memory.knowledge_score_threshold) == (8, 0.8)
    assert (memory.chunk_size, memory.chunk_overlap, memory.embedding.provider) == (
        1500,
        150,
        "openai",
    )
    assert "postgres://" not in config.model_dump_json()  # a worker setting, not in the snapshot
    assert not any(agent.memory_enabled for agent in config.agents.values())
    assert config.mcp.result_cache() is not None and config.mode == "sequential"


def test_a_single_agent_file_whose_agents_are_in_go_code_names_them_for_code() -> None:
    config = load_config(AGK / "basic-test.toml")
    assert unbound_agents(config) == ["agent1", "agent2"]


@pytest.mark.parametrize(("name", "says"), [("agentflow-mcp", "a settings fragment with no flow")])
def test_files_that_are_not_flows_say_what_they_are(name: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(AGK / f"{name}.toml")
    assert says in str(caught.value) and str(caught.value).count("\n") == 0


def test_single_agent_format_becomes_a_one_agent_flow() -> None:
    config = load_config(AGK / "ollama-config-based.toml")
    assert config.name == "ollama-helper" and config.orchestration.sequential_agents == [
        "ollama-helper"
    ]
    agent = config.agents["ollama-helper"]
    assert agent.timeout_seconds == 30 and agent.system_prompt.startswith("You are a helpful")
    resolved = resolve_llm(config, "ollama-helper")
    assert resolved is not None
    assert (resolved.kind, resolved.model, resolved.max_tokens) == ("ollama", "gemma3:1b", 200)


SINGLE = 'name = "helper"\nsystem_prompt = "Hi."\n[llm]\nprovider = "ollama"\nmodel = "m"\n'


def test_single_agent_memory_is_the_flows_agent_memory(tmp_path: Path) -> None:
    """The single-agent format's [memory] (AgenticGoKit's agent MemoryConfig): the agent
    remembers; [memory.rag] turns on RAG and the knowledge base, with its settings."""
    path = tmp_path / "agent.toml"
    path.write_text(SINGLE + '[memory]\nprovider = "memory"\nconnection = "m"\n', "utf-8")
    config = load_config(path)
    memory = config.agent_memory
    assert memory is not None and config.agents["helper"].memory_enabled
    assert (memory.provider, memory.store_connection()) == ("memory", "m")
    assert not (memory.enable_rag or memory.enable_knowledge_base)
    rag = "[memory.rag]\nmax_tokens = 2000\npersonal_weight = 0.4\nhistory_limit = 5\n"
    path.write_text(SINGLE + '[memory]\nprovider = "pgvector"\n' + rag, "utf-8")
    memory = load_config(path).agent_memory
    assert memory is not None and memory.enable_rag and memory.enable_knowledge_base
    assert (memory.rag_max_context_tokens, memory.rag_personal_weight) == (2000, 0.4)
    assert (memory.rag_knowledge_weight, memory.knowledge_max_results) == (0.7, 5)
    path.write_text(SINGLE + "[memory]\nenabled = false\n", "utf-8")
    assert not load_config(path).agents["helper"].memory_enabled


def test_single_agent_memory_errors_name_the_keys_as_written(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    text = '[memory]\noptions = { a = "b" }\n[memory.rag]\nmax_tokens = 0\nfoo = 1\n'
    path.write_text(SINGLE + text, "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = [line.removeprefix(f"{path}: ") for line in str(caught.value).splitlines()]
    assert lines == [
        "memory.provider: required, as in AgenticGoKit; allowed: sqlite, pgvector, memory",
        "memory.options: AgenticGoKit's agents do not read it either; remove it",
        "memory.rag.foo: not a key of the agent's [memory.rag]; allowed: max_tokens, "
        "personal_weight, knowledge_weight, history_limit",
        "memory.rag.max_tokens: Input should be greater than 0",
    ]


# ---------------------------------------------------------------- bad input: one clear line

ORCH = '[orchestration]\nmode = "sequential"\nsequential_agents = ["a"]\n'
LLM_AGENT = '[llm]\nprovider = "ollama"\nmodel = "m"\n[agents.a]\nsystem_prompt = "Hi."\n'


def problem(tmp_path: Path, text: str) -> str:
    path = tmp_path / "flow.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[agent_flow]\nprovider = "olama"\n' + ORCH + '[agents.a]\nsystem_prompt = "Hi."\n',
         "agent_flow.provider: unknown provider 'olama' (did you mean 'ollama'?)"),
        (LLM_AGENT + "[agents.a.llm]\nprovider = \"gpt\"\n" + ORCH,
         "agents.a.llm.provider: unknown provider 'gpt'"),
        (LLM_AGENT + ORCH + "[providers.mine]\nmodel = \"x\"\n",
         "providers.mine: unknown provider 'mine'; name the table after a provider"),
        (LLM_AGENT + ORCH + '[providers.openai]\napi_key = "sk-123"\n',
         'providers.openai.api_key: must name an environment variable, like "${OPENAI_API_KEY}"'),
        (LLM_AGENT + "[agents.a.retry_policy]\nbase_delay_ms = 5000\nmax_delay_ms = 10\n" + ORCH,
         "agents.a.retry_policy: max_delay_ms (10) is less than base_delay_ms (5000)"),
        (LLM_AGENT + "[agents.a.retry_policy]\nmax_retries = -1\n" + ORCH,
         "agents.a.retry_policy.max_retries: Input should be greater than or equal to 0"),
        (LLM_AGENT + "[agents.a.rate_limit]\nrequests_per_second = 2\nburst_size = 5\n" + ORCH,
         "agents.a.rate_limit.burst_size: not supported: the limit is Temporal's task-queue rate"),
        (LLM_AGENT + ORCH + '[[mcp.servers]]\nname = "t"\ntype = "tcp"\nhost = "h"\nport = 1\n',
         "mcp: servers[0] (t): MCP transport 'tcp' is not supported yet; use stdio"),
        (LLM_AGENT + ORCH + '[[mcp.servers]]\nname = "w"\ntype = "websocket"\nport = 1\n',
         "MCP transport 'websocket' is not supported yet"),
        (LLM_AGENT + ORCH + '[agent_memory]\nprovider = "weaviate"\n',
         "agent_memory.provider: memory provider 'weaviate' is not available; allowed: sqlite"),
        (LLM_AGENT + ORCH + "[mcp.cache]\nbackend = \"redis\"\n",
         "mcp.cache.backend: cache backend 'redis' is not supported yet; use memory"),
        (LLM_AGENT + ORCH + "[error_routing.circuit_breaker]\nfailure_threshold = 5\n",
         "error_routing.circuit_breaker: AgenticGoKit's key is not supported; agents are"),
        (LLM_AGENT + ORCH + '[logging]\nformat = "xml"\n', "logging.format: Input should be"),
        (LLM_AGENT.replace("[agents.a]\n", "[agents.a]\nauto_llm = false\n") + ORCH,
         "agents.a.auto_llm: false, and the agent has no handler"),
        (LLM_AGENT + 'output_schema = "{\\"type\\": \\"objekt\\"}"\n' + ORCH,
         "agents.a.output_schema: not a valid JSON Schema"),
        (LLM_AGENT + 'mcp_servers = ["nope"]\n' + ORCH,
         "agents.a.mcp_servers[0]: MCP server 'nope' is not defined"),
    ],
)  # fmt: skip
def test_bad_input_gives_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    message = problem(tmp_path, text)
    assert expected in message
    assert message.count("\n") == 0, message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (LLM_AGENT + ORCH + "[agent_memory]\nmemory_enabled = true\nenabled = false\n", None),
        (LLM_AGENT + ORCH + "[sessions]\nmemory_enabled = true\n", "sessions.memory_enabled"),
    ],
)
def test_no_misleading_did_you_mean(tmp_path: Path, text: str, key: str | None) -> None:
    if key is None:  # a disabled [agent_memory] is accepted whatever it holds
        path = tmp_path / "flow.toml"
        path.write_text(text, encoding="utf-8")
        assert load_config(path).agent_memory is not None
        return
    message = problem(tmp_path, text)
    assert f"{key}: unknown key;" in message and "did you mean" not in message


def test_real_typos_still_get_a_hint(tmp_path: Path) -> None:
    message = problem(tmp_path, LLM_AGENT + ORCH.replace("sequential_agents", "sequental_agents"))
    assert "did you mean 'sequential_agents'?" in message


def test_zero_timeouts_mean_the_default(tmp_path: Path) -> None:
    text = LLM_AGENT + "timeout_seconds = 0\n" + ORCH + "timeout_seconds = 0\n"
    text = text.replace('model = "m"\n', 'model = "m"\ntimeout_seconds = 0\n')
    path = tmp_path / "flow.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.agents["a"].timeout_seconds == 60 and config.orchestration.timeout_seconds == 300
    resolved = resolve_llm(config, "a")
    assert resolved is not None and resolved.timeout_seconds == 120


def test_validate_names_a_model_its_provider_deprecated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """researchAgent.toml keeps its gpt-4: validate passes and says, once per agent, that
    OpenAI deprecated it and what it recommends instead."""
    from agentflow.cli.main import main

    assert main(["validate", "--config", str(AGK / "researchAgent.toml")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{AGK / 'researchAgent.toml'}: ok:")
    lines = err.splitlines()
    assert [line.split("'")[1] for line in lines] == ["researcher", "analyzer", "synthesizer"]
    for line in lines:
        assert line.startswith("agentflow: warning: agent ")
        assert "model 'gpt-4' (openai): Model 'openai:gpt-4' is deprecated" in line
        assert "It recommends" in line
