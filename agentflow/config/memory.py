"""``[agent_memory]``: agent memory and RAG, with AgenticGoKit's keys and meanings.

A worker setting: FlowConfig keeps it out of the snapshot that travels in workflow input, so
a connection string never reaches workflow history (``${VAR}`` in it is read by the worker
when it opens the store). Agents opt in with ``memory_enabled = true``.

Stores (``provider``): ``sqlite`` (the default: sqlite-vec in a file under ``.agentflow/``),
``pgvector`` (PostgreSQL with the pgvector extension), ``memory`` (this process only, for tests
and development: not durable). Embeddings (``[agent_memory.embedding] provider``): ``openai``,
``azure``, ``ollama``, ``openai-compatible`` (reached like the ``[providers]`` of the same
kind), or ``dummy`` (deterministic vectors from the words of a text, for development).
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, field_validator, model_validator

from agentflow.config._base import Count, Seconds, StrictModel
from agentflow.limits import INT32_MAX

MEMORY_PROVIDERS = ("sqlite", "pgvector", "memory")
# AgenticGoKit's other names for the same stores.
MEMORY_PROVIDER_ALIASES = {
    "postgres": "pgvector",
    "postgresql": "pgvector",
    "inmemory": "memory",
    "in-memory": "memory",
    "local": "sqlite",
    "sqlite-vec": "sqlite",
}
EMBEDDING_PROVIDERS = ("openai", "azure", "ollama", "openai-compatible", "dummy")
DEFAULT_SQLITE_PATH = ".agentflow/memory.db"
DEFAULT_DIMENSIONS = 1536
DEFAULT_EMBEDDING_MODELS = {
    "openai": "text-embedding-3-small",
    "azure": "text-embedding-3-small",
    "openai-compatible": "text-embedding-3-small",
    "ollama": "nomic-embed-text",
    "dummy": "dummy",
}
# AgenticGoKit reads 0 as "unset" for these (core/memory.go NewMemory), and its scaffold
# writes 0 for each RAG setting of a project created without --rag: 0 is the default here too.
ZERO_IS_UNSET = (
    "max_results",
    "dimensions",
    "knowledge_max_results",
    "knowledge_score_threshold",
    "chunk_size",
    "chunk_overlap",
    "overlap_size",
)
# Keys of AgenticGoKit's docs that its Go code does not read either -> what to do instead.
AGK_MEMORY_UNSUPPORTED = {
    "enable_compression": "memories are not compressed; conversation_memory_limit bounds the "
    "turns an agent recalls, and agentflow memory forget deletes a session's memory",
    "cleanup_interval": "nothing is cleaned up on a schedule; agentflow memory forget deletes "
    "a source's or a session's records",
}


def memory_unsupported(loc: tuple[int | str, ...]) -> str | None:
    """What to write instead of the AgenticGoKit key at ``loc`` in ``[agent_memory]``."""
    if len(loc) == 2 and loc[0] == "agent_memory":
        return AGK_MEMORY_UNSUPPORTED.get(str(loc[1]))
    return None


def _one_spelling(data: Any, *names: str) -> None:
    """Two spellings of one key (AgenticGoKit's older name and its newer) must not both be
    written: which one wins would be a guess."""
    if isinstance(data, dict) and len(written := [n for n in names if n in data]) > 1:
        raise ValueError(f"{' and '.join(written)} are two spellings of one key; write one")


class EmbeddingConfig(StrictModel):
    """``[agent_memory.embedding]``: the model that turns text into vectors. ``provider``
    defaults to the kind of the flow's LLM provider when that kind has embeddings, else
    ``dummy``; the flow's ``[providers.NAME]`` table of that kind (else ``[providers.KIND]``)
    supplies what this table leaves out: ``base_url``, ``api_key``, Azure's ``api_version``."""

    provider: str | None = None
    model: str | None = None
    api_key: str | None = None
    base_url: str | None = Field(None, validation_alias=AliasChoices("base_url", "endpoint"))
    cache_embeddings: bool = True
    max_batch_size: Count = 100
    timeout_seconds: Seconds = 30.0

    @model_validator(mode="before")
    @classmethod
    def _spelled_once(cls, data: Any) -> Any:
        _one_spelling(data, "base_url", "endpoint")
        return data

    @field_validator("provider")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.strip().lower()
        if name not in EMBEDDING_PROVIDERS:
            raise ValueError(
                f"unknown embedding provider {value!r}; allowed: {', '.join(EMBEDDING_PROVIDERS)}"
            )
        return name


class PgvectorConfig(StrictModel):
    """``[agent_memory.pgvector]``: where the PostgreSQL store lives (overrides
    ``connection``) and the table it uses."""

    connection: str | None = Field(
        None, validation_alias=AliasChoices("connection", "connection_string")
    )
    table_name: str = Field("agentflow_memory", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

    @model_validator(mode="before")
    @classmethod
    def _spelled_once(cls, data: Any) -> Any:
        _one_spelling(data, "connection", "connection_string")
        return data


# What ingest reads: text, Markdown, code, PDF files; HTML pages (agentflow/memory/web.py).
DOCUMENT_KINDS = ("txt", "md", "code", "pdf", "web")


class DocumentsConfig(StrictModel):
    """``[agent_memory.documents]``: what ``agentflow memory ingest`` takes."""

    auto_chunk: bool = True
    supported_types: list[str] = Field(default_factory=lambda: list(DOCUMENT_KINDS))
    max_file_size: str = "10MB"
    enable_metadata_extraction: bool = True
    enable_url_scraping: bool = False

    @field_validator("supported_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [kind for kind in value if kind not in DOCUMENT_KINDS]
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))} not known; the kinds are "
                f"{', '.join(DOCUMENT_KINDS)} (web: HTML pages, with enable_url_scraping)"
            )
        return value

    @field_validator("auto_chunk")
    @classmethod
    def _chunked(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "false is not supported: documents are always chunked (chunk_size, "
                "chunk_overlap in [agent_memory])"
            )
        return value


class SearchConfig(StrictModel):
    """``[agent_memory.search]``: how results are ranked. With ``hybrid_search``, a chunk's
    score is ``semantic_weight`` * cosine similarity + ``keyword_weight`` * the share of the
    query's words it contains."""

    hybrid_search: bool = True
    keyword_weight: float = Field(0.3, ge=0, le=1)
    semantic_weight: float = Field(0.7, ge=0, le=1)
    enable_reranking: bool = False
    reranking_model: str = ""
    enable_query_expansion: bool = False

    @field_validator("enable_reranking", "enable_query_expansion")
    @classmethod
    def _off(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "true is not supported: results are ranked by cosine similarity, and with "
                "hybrid_search by the query's words too (semantic_weight, keyword_weight)"
            )
        return value


class AgentMemoryConfig(StrictModel):
    """``[agent_memory]``: the store, its embeddings, the knowledge base and RAG settings."""

    enabled: bool = True
    provider: str = "sqlite"
    # sqlite: a file path; pgvector: postgres://…; memory: a name (one store per name).
    connection: str | None = None
    max_results: Count = 10
    dimensions: int = Field(DEFAULT_DIMENSIONS, gt=0, le=16000)
    auto_embed: bool = True
    enable_knowledge_base: bool = True
    knowledge_max_results: Count = 20
    knowledge_score_threshold: float | None = Field(None, ge=-1, le=1)
    chunk_size: Count = 1000
    chunk_overlap: int = Field(
        200, ge=0, le=INT32_MAX, validation_alias=AliasChoices("chunk_overlap", "overlap_size")
    )
    enable_rag: bool = True
    rag_max_context_tokens: Count = 4000
    rag_personal_weight: float = Field(0.3, ge=0, le=1)
    rag_knowledge_weight: float = Field(0.7, ge=0, le=1)
    rag_include_sources: bool = True
    # Conversation memory: the turns of a session an agent recalls at most.
    conversation_memory_limit: Count = 20
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    pgvector: PgvectorConfig = Field(default_factory=PgvectorConfig)
    documents: DocumentsConfig = Field(default_factory=DocumentsConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)

    @field_validator("auto_embed")
    @classmethod
    def _embedded(cls, value: bool) -> bool:
        if not value:
            raise ValueError("false is not supported: memory is searched by every text's vector")
        return value

    @model_validator(mode="before")
    @classmethod
    def _agk_values(cls, data: Any) -> Any:
        _one_spelling(data, "chunk_overlap", "overlap_size")
        if not isinstance(data, dict):
            return data
        # 0 in a count, 0 or 0.0 in the threshold; 0.0 in a count is a wrong type, refused.
        zero = [k for k, v in data.items() if k in ZERO_IS_UNSET and v == 0 and (
            type(v) is int or (type(v) is float and k == "knowledge_score_threshold"))]  # fmt: skip
        return {k: v for k, v in data.items() if k not in zero}

    @field_validator("provider")
    @classmethod
    def _known_store(cls, value: str) -> str:
        name = value.strip().lower()
        name = MEMORY_PROVIDER_ALIASES.get(name, name)
        if name not in MEMORY_PROVIDERS:
            raise ValueError(
                f"memory provider {value!r} is not available; allowed: sqlite (the default, a "
                "file under .agentflow/), pgvector (PostgreSQL with pgvector), memory (this "
                "process only, not durable)"
            )
        return name

    @model_validator(mode="after")
    def _overlap_smaller(self) -> AgentMemoryConfig:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size "
                f"({self.chunk_size}): each chunk must move forward"
            )
        return self

    def store_connection(self) -> str:
        """The store's connection as written (``${VAR}`` not yet read): the pgvector table's,
        else ``connection``, else the default of the provider."""
        if self.provider == "pgvector":
            found = self.pgvector.connection or self.connection
            return found or "${DATABASE_URL}"
        if self.provider == "sqlite":
            return self.connection or DEFAULT_SQLITE_PATH
        return self.connection or "default"

    def score_threshold(self) -> float:
        """AgenticGoKit's default: 0 for dummy embeddings, 0.3 for real ones."""
        if self.knowledge_score_threshold is not None:
            return self.knowledge_score_threshold
        return 0.0 if self.embedding.provider == "dummy" else 0.3


def memory_table(data: Any) -> Any:
    """``[agent_memory]`` as written, or the disabled table's settings (``enabled = false``
    accepts any keys of a memory that is off)."""
    if isinstance(data, dict) and data.get("enabled") is False:
        return {"enabled": False}
    return data
