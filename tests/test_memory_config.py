"""``[agent_memory]`` and ``memory_enabled`` (issue 20) as the loader reads them: AgenticGoKit's
keys and spellings, the defaults, the embedding provider taken from the flow's LLM, one clear
line per mistake, and a connection string that stays a ``${VAR}`` on the worker, out of every
workflow input."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from agentflow.config import FlowConfig, load_config
from agentflow.config.memory import DEFAULT_SQLITE_PATH
from agentflow.errors import ConfigError
from agentflow.models.flow import Event, FlowInput, State

FLOW = """
[llm]
provider = "ollama"
model = "gemma3:1b"

[orchestration]
mode = "sequential"
sequential_agents = ["a"]

[agents.a]
system_prompt = "You help."
"""
MEMORY_AGENT = FLOW + "memory_enabled = true\n"


def load(tmp_path: Path, text: str) -> FlowConfig:
    path = tmp_path / "flow.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(path)


def refusal(tmp_path: Path, text: str) -> list[str]:
    """The refusal's lines without the file name (each must start with it)."""
    path = tmp_path / "flow.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    return [line.removeprefix(f"{path}: ") for line in lines]


def test_agenticgokit_scaffold_keys_mean_what_they_mean_there(tmp_path: Path) -> None:
    # What `agentcli create --memory pgvector --rag default` writes (internal/scaffold).
    config = load(tmp_path, FLOW + """
        [agent_memory]
        provider = "pgvector"
        connection = "postgres://user:password@localhost:15432/agentflow?sslmode=disable"
        max_results = 5
        dimensions = 1536
        auto_embed = true
        enable_knowledge_base = true
        knowledge_max_results = 5
        knowledge_score_threshold = 0.7
        chunk_size = 1000
        chunk_overlap = 100
        enable_rag = true
        rag_max_context_tokens = 4000
        rag_personal_weight = 0.3
        rag_knowledge_weight = 0.7
        rag_include_sources = true

        [agent_memory.embedding]
        provider = "ollama"
        model = "nomic-embed-text:latest"
        base_url = "http://localhost:11434"
        cache_embeddings = true
        max_batch_size = 100
        timeout_seconds = 30

        [agent_memory.documents]
        auto_chunk = true
        supported_types = ["pdf", "txt", "md", "web", "code"]
        max_file_size = "10MB"
        enable_metadata_extraction = true
        enable_url_scraping = true

        [agent_memory.search]
        hybrid_search = true
        keyword_weight = 0.3
        semantic_weight = 0.7
        enable_reranking = false
        enable_query_expansion = false
    """)  # fmt: skip
    memory = config.agent_memory
    assert memory is not None and memory.enabled and memory.provider == "pgvector"
    assert memory.store_connection().startswith("postgres://user:password@localhost:15432/")
    assert (memory.max_results, memory.knowledge_max_results, memory.chunk_overlap) == (5, 5, 100)
    assert memory.score_threshold() == 0.7
    assert (memory.embedding.provider, memory.embedding.model) == (
        "ollama",
        "nomic-embed-text:latest",
    )
    assert memory.embedding.timeout_seconds == 30.0 and memory.search.hybrid_search


def test_a_scaffold_without_rag_writes_zeros_which_mean_the_defaults(tmp_path: Path) -> None:
    # `agentcli create --memory pgvector` without --rag: Go's zero values, read as "unset".
    config = load(tmp_path, FLOW + """
        [agent_memory]
        provider = "memory"
        max_results = 0
        knowledge_max_results = 0
        knowledge_score_threshold = 0.0
        chunk_size = 0
        chunk_overlap = 0
        enable_rag = false
    """)  # fmt: skip
    memory = config.agent_memory
    assert memory is not None
    assert (memory.max_results, memory.knowledge_max_results) == (10, 20)
    assert (memory.chunk_size, memory.chunk_overlap, memory.knowledge_score_threshold) == (
        1000,
        200,
        None,
    )
    assert memory.score_threshold() == 0.3  # real embeddings (ollama): AgenticGoKit's 0.3


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[agent_memory]\nprovider = "pgvector"\nconnection = "postgres://a/b"\n', "postgres://a/b"),
        ('[agent_memory]\nprovider = "postgresql"\n[agent_memory.pgvector]\n'
         'connection_string = "postgres://c/d"\n', "postgres://c/d"),
        ('[agent_memory]\nprovider = "pgvector"\nconnection = "postgres://a/b"\n'
         '[agent_memory.pgvector]\nconnection = "postgres://e/f"\n', "postgres://e/f"),
        ('[agent_memory]\nprovider = "pgvector"\n', "${DATABASE_URL}"),
        ("[agent_memory]\n", DEFAULT_SQLITE_PATH),
        ('[agent_memory]\nprovider = "local"\nconnection = "m.db"\n', "m.db"),
        ('[agent_memory]\nprovider = "in-memory"\n', "default"),
    ],
)  # fmt: skip
def test_where_the_store_is(tmp_path: Path, table: str, expected: str) -> None:
    memory = load(tmp_path, FLOW + table).agent_memory
    assert memory is not None and memory.store_connection() == expected


def test_spellings_and_defaults(tmp_path: Path) -> None:
    memory = load(tmp_path, FLOW + """
        [agent_memory]
        overlap_size = 50
        [agent_memory.embedding]
        provider = "OpenAI"
        endpoint = "http://proxy/v1"
    """).agent_memory  # fmt: skip
    assert memory is not None and memory.chunk_overlap == 50
    assert (memory.embedding.provider, memory.embedding.base_url) == ("openai", "http://proxy/v1")
    memory = load(tmp_path, FLOW + "[agent_memory]\n").agent_memory
    assert memory is not None
    assert (memory.provider, memory.dimensions, memory.chunk_size, memory.chunk_overlap) == (
        "sqlite",
        1536,
        1000,
        200,
    )
    assert memory.documents.supported_types == ["txt", "md", "code", "pdf", "web"]
    assert load(tmp_path, FLOW).agent_memory is None  # no table, no memory-enabled agent


def test_a_memory_enabled_agent_gets_the_defaults_when_the_table_is_absent(
    tmp_path: Path,
) -> None:
    config = load(tmp_path, MEMORY_AGENT)
    assert config.agents["a"].memory_enabled
    memory = config.agent_memory
    assert memory is not None and memory.enabled and memory.provider == "sqlite"
    assert memory.store_connection() == DEFAULT_SQLITE_PATH


@pytest.mark.parametrize(
    ("llm", "expected"),
    [
        ('[llm]\nprovider = "openai"\nmodel = "m"\n', "openai"),
        ('[llm]\nprovider = "azure"\nmodel = "m"\n', "azure"),
        ('[llm]\nprovider = "ollama"\nmodel = "m"\n', "ollama"),
        ('[llm]\nprovider = "anthropic"\nmodel = "m"\n', "dummy"),
        ('[llm]\nprovider = "mock"\n', "dummy"),
        # [agent_flow] provider is [llm] provider's default; a [providers] table's type its kind.
        ('[agent_flow]\nprovider = "local"\n[llm]\nmodel = "m"\n[providers.local]\n'
         'type = "openai-compatible"\nbase_url = "http://127.0.0.1:9/v1"\n', "openai-compatible"),
        ('[llm]\nprovider = "gpt"\nmodel = "m"\n[providers.gpt]\ntype = "azure-openai"\n', "azure"),
    ],
)  # fmt: skip
def test_the_embedding_provider_defaults_to_the_flows_llm(
    tmp_path: Path, llm: str, expected: str
) -> None:
    flow = MEMORY_AGENT.replace('[llm]\nprovider = "ollama"\nmodel = "gemma3:1b"\n', llm)
    memory = load(tmp_path, flow).agent_memory
    assert memory is not None and memory.embedding.provider == expected
    # Set in the table, it stays as written.
    memory = load(tmp_path, flow + '[agent_memory.embedding]\nprovider = "dummy"\n').agent_memory
    assert memory is not None and memory.embedding.provider == "dummy"
    assert memory.score_threshold() == 0.0  # AgenticGoKit's default for dummy embeddings


def test_no_llm_means_dummy_embeddings(tmp_path: Path) -> None:
    flow = MEMORY_AGENT.replace('[llm]\nprovider = "ollama"\nmodel = "gemma3:1b"\n', "")
    flow = flow.replace('system_prompt = "You help."', 'handler = "tests.agents:append"')
    memory = load(tmp_path, flow).agent_memory
    assert memory is not None and memory.embedding.provider == "dummy"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MEMORY_AGENT + '[agent_memory]\nenabled = false\nprovider = "weaviate"\n',
         "agents.a.memory_enabled: true, but agent_memory.enabled = false: turn the flow's "
         "memory on (or remove memory_enabled)"),
        (FLOW + '[agent_memory]\nprovider = "weaviate"\n',
         "agent_memory.provider: memory provider 'weaviate' is not available; allowed: sqlite "
         "(the default, a file under .agentflow/), pgvector (PostgreSQL with pgvector), memory "
         "(this process only, not durable)"),
        (FLOW + '[agent_memory.embedding]\nprovider = "cohere"\n',
         "agent_memory.embedding.provider: unknown embedding provider 'cohere'; allowed: "
         "openai, azure, ollama, openai-compatible, dummy"),
        (FLOW + "[agent_memory]\nchunk_size = 100\nchunk_overlap = 100\n",
         "agent_memory: chunk_overlap (100) must be smaller than chunk_size (100): each chunk "
         "must move forward"),
        (FLOW + "[agent_memory]\nchunk_overlap = 10\noverlap_size = 10\n",
         "agent_memory: chunk_overlap and overlap_size are two spellings of one key; write one"),
        (FLOW + '[agent_memory.pgvector]\nconnection = "postgres://secret@a/b"\n'
         'connection_string = "postgres://secret@a/b"\n',
         "agent_memory.pgvector: connection and connection_string are two spellings of one "
         "key; write one"),
        (FLOW + "[agent_memory.search]\nenable_reranking = true\n",
         "agent_memory.search.enable_reranking: true is not supported: results are ranked by"),
        (FLOW + "[agent_memory]\nauto_embed = false\n",
         "agent_memory.auto_embed: false is not supported: memory is searched by every text's"),
        (FLOW + '[agent_memory]\ncleanup_interval = "1h"\n',
         "agent_memory.cleanup_interval: AgenticGoKit's key is not supported; nothing is "
         "cleaned up on a schedule"),
        (FLOW + "[agent_memory]\nmax_result = 3\n",
         "agent_memory.max_result: unknown key (did you mean 'max_results'?); allowed keys: "
         "enabled, provider, connection, max_results,"),
        (FLOW + "[agent_memory]\ndimensions = 20000\n",
         "agent_memory.dimensions: Input should be less than or equal to 16000 (got 20000)"),
        (FLOW.replace('system_prompt = "You help."', 'flow = "other.toml"\nmemory_enabled = true'),
         "agents.a: flow cannot be combined with memory_enabled"),
    ],
)  # fmt: skip
def test_each_mistake_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    [line] = refusal(tmp_path, text)
    assert line.startswith(expected), line
    assert "secret" not in line  # a connection string is never echoed


def test_a_disabled_table_accepts_any_keys(tmp_path: Path) -> None:
    config = load(tmp_path, FLOW + '[agent_memory]\nenabled = false\nprovider = "weaviate"\n')
    assert config.agent_memory is not None and not config.agent_memory.enabled


def test_the_older_memory_and_rag_tables_are_agent_memory(tmp_path: Path) -> None:
    config = load(tmp_path, MEMORY_AGENT + """
        [memory]
        enabled = true
        provider = "postgres"
        connection_string = "${DB_URL}"

        [memory.embedding]
        provider = "openai"
        model = "text-embedding-ada-002"
        dimensions = 1536
        batch_size = 50

        [rag]
        enabled = true
        chunk_size = 800
        chunk_overlap = 80
        similarity_threshold = 0.8
        max_chunks = 5

        [rag.document_processing]
        supported_formats = ["txt", "md"]
        max_file_size_mb = 25
        extract_metadata = false
    """)  # fmt: skip
    memory = config.agent_memory
    assert memory is not None and memory.provider == "pgvector"
    assert memory.store_connection() == "${DB_URL}"
    assert (memory.embedding.provider, memory.embedding.max_batch_size) == ("openai", 50)
    assert (memory.chunk_size, memory.chunk_overlap, memory.max_results) == (800, 80, 5)
    assert memory.knowledge_score_threshold == 0.8 and memory.enable_rag
    documents = memory.documents
    assert (documents.supported_types, documents.max_file_size) == (["txt", "md"], "25MB")
    assert not documents.enable_metadata_extraction
    # Off, the older table accepts any keys, like [agent_memory].
    config = load(tmp_path, FLOW + "[memory]\nenabled = false\nttl_seconds = 60\n[rag]\n"
                  "enabled = false\n")  # fmt: skip
    assert config.agent_memory is not None and not config.agent_memory.enabled


def test_older_keys_without_an_equivalent_are_refused_one_line_each(tmp_path: Path) -> None:
    lines = refusal(tmp_path, FLOW + """
        [memory]
        provider = "local"
        ttl_seconds = 3600
        max_entries = 1000
        [memory.embedding]
        dimensions = 768
        [rag]
        max_chunks = -1
        simlarity_threshold = 0.5
    """)  # fmt: skip
    assert len(lines) == 4, lines
    # A moved value's error names the key the file wrote.
    assert lines[0] == "rag.max_chunks: Input should be greater than 0 (got -1)"
    assert lines[1].startswith("memory.ttl_seconds: AgenticGoKit's older key has no "
                               "[agent_memory] equivalent: records do not expire")  # fmt: skip
    assert lines[2].startswith("memory.max_entries: AgenticGoKit's older key has no")
    assert lines[3].startswith(
        "rag.simlarity_threshold: not a key of AgenticGoKit's older [rag] table (did you mean "
        "'similarity_threshold'?); its keys: enabled, chunk_size"
    )
    [line] = refusal(tmp_path, FLOW + "[agent_memory]\n[rag]\nmax_chunks = 3\n")
    assert line.startswith(
        "rag: AgenticGoKit's older memory table beside [agent_memory]: write its keys in "
        "[agent_memory] (memory.connection_string -> connection,"
    )
    [line] = refusal(tmp_path, FLOW + "[memory]\ndimensions = 768\n[memory.embedding]\n"
                     "dimensions = 1536\n")  # fmt: skip
    assert line == (
        "memory.embedding.dimensions: memory.dimensions already sets agent_memory.dimensions; "
        "write it once"
    )


def test_the_connection_stays_a_template_out_of_every_workflow_input(tmp_path: Path) -> None:
    config = load(tmp_path, MEMORY_AGENT + """
        [agent_memory]
        provider = "pgvector"
        [agent_memory.pgvector]
        connection_string = "postgres://app:${DB_PASSWORD}@db/app"
    """)  # fmt: skip
    memory = config.agent_memory
    assert memory is not None
    assert memory.store_connection() == "postgres://app:${DB_PASSWORD}@db/app"  # worker expands
    assert "agent_memory" not in config.model_dump()
    assert "DB_PASSWORD" not in config.model_dump_json()
    # The snapshot as it travels: FlowInput through the client's data converter.
    flow_input = FlowInput(config=config, event=Event(), state=State())
    [payload] = pydantic_data_converter.payload_converter.to_payloads([flow_input])
    assert b"DB_PASSWORD" not in payload.data and b"agent_memory" not in payload.data
    assert b'"memory_enabled":true' in payload.data  # the workflow knows whom to recall for
    # Decoded in the workflow, the agent still has memory; the store is the worker's to open.
    [decoded] = pydantic_data_converter.payload_converter.from_payloads([payload], [FlowInput])
    assert decoded.config.agents["a"].memory_enabled
