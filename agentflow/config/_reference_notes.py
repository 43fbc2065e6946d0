"""The words of docs/reference/config.md that the schema cannot say by itself: what a
validator allows (``ALLOWED``) and what a key is where its model has no comment (``NOTES``).
agentflow/config/reference.py puts them beside what it reads from the models.
"""

from __future__ import annotations

import json
from typing import Any

from agentflow.config import _base
from agentflow.config.llm import (
    DEFAULT_AZURE_API_VERSION,
    DEFAULT_LLM_TIMEOUT_SECONDS,
    PROVIDER_ALIASES,
    PROVIDER_KINDS,
    AgentLLMConfig,
)
from agentflow.config.mcp import MCP_TRANSPORTS, TRANSPORT_ALIASES
from agentflow.config.memory import (
    DEFAULT_EMBEDDING_MODELS,
    DEFAULT_SQLITE_PATH,
    EMBEDDING_PROVIDERS,
    MEMORY_PROVIDER_ALIASES,
    MEMORY_PROVIDERS,
)
from agentflow.config.runtime import LOG_LEVELS


def quoted(values: Any) -> str:
    return ", ".join(f"`{json.dumps(value)}`" for value in values)


_PATH = '`"package.module:function"`'
_TRANSPORTS = f"{quoted(MCP_TRANSPORTS)}; aliases: {quoted(TRANSPORT_ALIASES)}"
# What a validator allows, where the type alone does not say it (key path -> text).
ALLOWED: dict[str, str] = {
    "orchestration.mode": f"aliases: {quoted(_base.MODE_ALIASES)}; AgenticGoKit's "
    f"{quoted(_base.AGK_MODES_UNSUPPORTED)} are refused",
    "logging.level": f"{quoted(LOG_LEVELS)} (any case)",
    "providers.NAME.type": f"{quoted(PROVIDER_KINDS)}; aliases: {quoted(PROVIDER_ALIASES)}",
    "providers.NAME.api_key": 'a `"${VAR}"` template only',
    "llm.provider": f"a provider kind ({quoted(PROVIDER_KINDS)}) or a `[providers.NAME]` name",
    "llm.api_key": 'a `"${VAR}"` template only',
    "agent_flow.provider": "as `[llm] provider`",
    "mcp.servers.type": _TRANSPORTS,
    "mcp.transport": _TRANSPORTS,
    "mcp.cache.backend": '`"memory"`',
    "error_routing.category_handlers": f"keys: {quoted(_base.ERROR_KINDS)}, "
    f"{quoted(_base.ERROR_KIND_ALIASES)}; values: agent names",
    "agents.NAME.handler": _PATH,
    "agents.NAME.tools": f"{_PATH} each",
    "agents.NAME.subscribes": "topics or patterns (`*`: one segment, `>`: the rest), or "
    '`{ topic = "order.*", when = "CEL" }` (docs/bus.md#filters-subscribing-on-an-events-content)',
    "orchestration.routes.when": "a CEL expression on `data`, `metadata`, `topic`, `id`, `source`",
    "agents.NAME.publishes": "topics or patterns",
    "agents.NAME.accepts_from": '`"FLOW.AGENT"`, `"client IDENTITY"`; globs (`"client *"`)',
    "bus.accepts_from": '`"FLOW.AGENT"`, `"client IDENTITY"`; globs (`"client *"`)',
    **{f"hooks.{point}": f"{_PATH} each" for point in _base.HOOK_POINTS},
    "agent_memory.provider": f"{quoted(MEMORY_PROVIDERS)}; aliases: "
    f"{quoted(MEMORY_PROVIDER_ALIASES)}",
    "agent_memory.embedding.provider": quoted(EMBEDDING_PROVIDERS),
    "agent_memory.auto_embed": "`true`",
    "agent_memory.documents.auto_chunk": "`true`",
    "agent_memory.search.enable_reranking": "`false`",
    "agent_memory.search.enable_query_expansion": "`false`",
}
# AgenticGoKit's zero values (core/memory.go NewMemory; its scaffold writes them).
_ZERO = 'AgenticGoKit\'s 0 means "unset": the default.'
_MODELS = ", ".join(f"{kind}: `{model}`" for kind, model in DEFAULT_EMBEDDING_MODELS.items())

# What a key is, where the comment in its model (if any) does not say it: shown first, then
# that comment. One key path (or model name and key) a line; a line that starts with spaces
# continues the one above.
NOTES_TEXT = f"""
agent_flow.name: The flow's name: it starts every workflow id of the flow.
agent_flow.version: Descriptive.
agent_flow.description: Descriptive.
agents.NAME.role: Descriptive.
agents.NAME.description: Descriptive.
agents.NAME.system_prompt: An LLM agent's instructions (an agent with it and no handler asks
  the model).
agents.NAME.enabled: A disabled agent is never run, routed to or subscribed.
agents.NAME.handler: The Python callable that is the agent (the config file's directory is
  searched first, then the Python path).
agents.NAME.timeout_seconds: One attempt's time limit.
agents.NAME.retry_attempts: Retries after the first try; unset: `[orchestration]
  retry_attempts`.
agents.NAME.retry: This agent's retry intervals; unset: `[orchestration.retry]`.
agents.NAME.llm: This agent's overrides of `[llm]`.
agents.NAME.approval_timeout_seconds: How long a person has to decide.
orchestration.mode: Which agents run, in what order (see docs/modes.md). AgenticGoKit's
  `agents = [...]` is the mode's list: `sequential_agents`, `collaborative_agents`, or a
  `loop_agent` of one (docs/modes.md#agenticgokit-files).
orchestration.timeout_seconds: The whole run's time limit (across continue-as-new). Also
  AgenticGoKit's `timeout`, a Go duration (`"30s"`, `"1m30s"`).
orchestration.max_iterations: Loop mode: the most iterations of `loop_agent`.
orchestration.retry_attempts: Retries after the first try, for every agent that sets none.
orchestration.collaborative_agents: Collaborative and mixed modes: the agents that run in
  parallel. Unset in collaborative mode: every enabled agent in `[agents]`, in file order.
orchestration.sequential_agents: Sequential and mixed modes: the agents, in order.
orchestration.loop_agent: Loop mode: the agent that runs on its own output.
orchestration.entry_agent: Route mode: the first agent when the event names no target.
orchestration.failure_threshold: Collaborative: the fraction of agents that may fail without
  failing the run.
orchestration.max_concurrency: Collaborative: agents running at once.
orchestration.max_hops: Route mode: hand-offs before the run fails as a loop; the bus: the
  longest publish chain.
orchestration.retry: Retry intervals of every agent that sets none.
RetrySettings.initial_interval_seconds: The delay before the first retry.
RetrySettings.backoff_coefficient: Each delay is the previous one times this.
RetrySettings.maximum_interval_seconds: The longest delay between retries.
agents.NAME.retry_policy.max_retries: Retries after the first try.
agents.NAME.retry_policy.base_delay_ms: The delay before the first retry.
agents.NAME.retry_policy.max_delay_ms: The longest delay between retries.
agents.NAME.retry_policy.backoff_factor: Each delay is the previous one times this.
agents.NAME.rate_limit.requests_per_second: Starts of this agent per second, across every
  worker.
llm.provider: The provider of every LLM agent whose own `llm` table names none; unset:
  `[agent_flow] provider`.
llm.model: The model name.
llm.max_tokens: The longest reply, in tokens.
llm.base_url: The provider's address (a proxy, a local server).
llm.api_key_env: The name of the variable that holds the key.
llm.timeout_seconds: One model request's time limit; unset: {DEFAULT_LLM_TIMEOUT_SECONDS:g} s.
providers.NAME.model: The model name.
providers.NAME.api_version: Azure: the API version (default {DEFAULT_AZURE_API_VERSION}).
providers.NAME.temperature: Default of the agents that use this provider.
providers.NAME.max_tokens: Default of the agents that use this provider.
providers.NAME.timeout_seconds: Default of the agents that use this provider.
error_routing.enabled: Off: no failure is routed (the event is dead-lettered, or the run
  fails).
error_routing.error_handler: The agent that takes a failure no `category_handlers` entry takes.
error_routing.category_handlers: Error kind -> the agent that takes it.
temporal.address: host:port of the Temporal frontend; unset: TEMPORAL_ADDRESS, else
  localhost:7233.
temporal.namespace: Unset: TEMPORAL_NAMESPACE, else default.
temporal.task_queue: The task queue the flow's workflows and agents run on; unset: the flow's
  own, `agentflow:NAME` ([agent_flow] name), so only workers that serve the flow get its work.
temporal.profile: A profile of the Temporal CLI's config file.
temporal.tls: Connect with TLS; unset: Temporal's environment settings decide.
telemetry.exporter: Where spans and metrics go.
telemetry.headers: Headers of every OTLP export (an API key, say).
telemetry.service_name: OpenTelemetry's service.name.
security.encrypt: Encrypt every payload before it leaves the process.
security.key_file: A file with one `id=base64key` per line.
security.ui_origins: The UI origins the codec server answers (CORS).
security.token_env: The variable holding the codec server's bearer token.
payloads.region: s3: the bucket's region.
payloads.endpoint_url: s3: the address of an S3-compatible store.
mcp.enabled: Off: no agent gets MCP tools.
mcp.discovery_timeout_ms: How long discovery probes the ports.
mcp.scan_ports: The ports discovery probes.
mcp.max_retries: Further tries to start or reach a server.
mcp.retry_delay_ms: The wait between those tries.
mcp.servers: See `[[mcp.servers]]`.
mcp.cache: See `[mcp.cache]`.
mcp.servers.name: What agents' `mcp_servers` call it.
mcp.servers.enabled: A disabled server is never started or reached.
mcp.servers.args: stdio: arguments after the command's own.
mcp.servers.env: stdio: the server's environment (`${{VAR}}` read from the worker's).
mcp.servers.cwd: stdio: its working directory.
mcp.servers.host: sse / http: the host, with port, instead of url.
mcp.servers.port: sse / http: the port, with host, instead of url.
mcp.servers.headers: sse / http: request headers (secrets as `${{VAR}}`).
mcp.cache.enabled: Off: no result is cached.
mcp.cache.default_ttl_ms: How long a result is kept, for a tool without its own TTL.
mcp.cache.max_size_mb: The cache's total size.
logging.level: The worker's log level.
logging.file_only: Write to the file only, not to stderr.
logging.max_size: Rotate the file at this many MB.
logging.max_backups: Rotated files kept.
agent_memory.enabled: Off: no agent may set memory_enabled; a table that is off accepts any
  keys. AgenticGoKit's older `[memory]` and `[rag]` tables are read as this one
  (`memory.connection_string`: `connection`, `rag.enabled`: `enable_rag`, `rag.max_chunks`:
  `max_results`, `rag.similarity_threshold`: `knowledge_score_threshold`,
  `[rag.document_processing]`: `[agent_memory.documents]`); a key with no equivalent is refused.
agent_memory.provider: Where memory is kept: sqlite (a file: `{DEFAULT_SQLITE_PATH}` unless
  `connection` names another), pgvector (PostgreSQL with the pgvector extension), memory (this
  process only, for tests: not durable).
agent_memory.connection: `${{VAR}}` in it is read by the worker when it opens the store; the
  value never travels in workflow input.
agent_memory.max_results: The records a memory-enabled agent recalls for its input, best
  first. {_ZERO}
agent_memory.dimensions: The length of every vector: the embedding model's. {_ZERO}
agent_memory.auto_embed: Every stored text is embedded.
agent_memory.enable_knowledge_base: Agents recall from the documents `agentflow memory ingest`
  stored, beside their session's earlier turns.
agent_memory.knowledge_max_results: AgenticGoKit's cap on knowledge-base results. {_ZERO}
agent_memory.knowledge_score_threshold: Records scoring less are not recalled; unset: 0 with
  `dummy` embeddings, else 0.3 (AgenticGoKit's defaults); -1 keeps every record. {_ZERO}
agent_memory.chunk_size: Documents and turns are stored in chunks of at most this many
  characters. {_ZERO}
agent_memory.chunk_overlap: Characters each chunk repeats from the one before. {_ZERO}
agent_memory.enable_rag: AgenticGoKit's switch of RAG context assembly.
agent_memory.rag_max_context_tokens: What an agent recalls is cut to about this many tokens
  (four characters each).
agent_memory.rag_personal_weight: The weight of the session's earlier turns in the ranking.
agent_memory.rag_knowledge_weight: The weight of knowledge-base records in the ranking.
agent_memory.rag_include_sources: The agent is told where each recalled record came from.
agent_memory.embedding.provider: Unset: the kind of the flow's LLM provider (`[llm]
  provider`, else `[agent_flow] provider`; a `[providers.NAME]` table's `type`) when it is
  openai, azure, ollama or openai-compatible; else `dummy` (vectors from a text's words: no
  service, for development).
agent_memory.embedding.model: Unset: {_MODELS}.
agent_memory.embedding.api_key: Unset: the provider table's, else the kind's usual variable.
agent_memory.embedding.base_url: Unset: the provider table's, else the kind's default.
agent_memory.embedding.cache_embeddings: Vectors of texts already embedded are reused, in
  each worker process.
agent_memory.embedding.max_batch_size: Texts per embeddings request.
agent_memory.embedding.timeout_seconds: One embeddings request's time limit.
agent_memory.pgvector.connection: A postgres:// URL (`${{VAR}}` read by the worker); unset:
  `[agent_memory] connection`, else `${{DATABASE_URL}}`.
agent_memory.pgvector.table_name: The table the store creates and uses.
agent_memory.documents.auto_chunk: Documents are chunked (chunk_size, chunk_overlap).
agent_memory.documents.supported_types: The kinds of file `agentflow memory ingest` takes
  (`web`: HTML pages).
agent_memory.documents.max_file_size: A larger file is refused (`"10MB"`, `"512KB"`).
agent_memory.documents.enable_metadata_extraction: Keep a file's metadata with its chunks.
agent_memory.documents.enable_url_scraping: `memory ingest` takes http(s) URLs too: the worker
  fetches each page (HTML read as text: `web` in supported_types).
agent_memory.search.hybrid_search: Rank by the query's words too, not only by similarity.
agent_memory.search.keyword_weight: Hybrid search: the weight of the query's words.
agent_memory.search.semantic_weight: Hybrid search: the weight of cosine similarity.
agent_memory.search.enable_reranking: There is no reranking model.
agent_memory.search.reranking_model: Unused (no reranking).
agent_memory.search.enable_query_expansion: Queries are used as written.
hooks.all: Callbacks at every point, after the point's own.
llm.top_p: Nucleus sampling: the share of likely tokens the model picks from.
llm.frequency_penalty: Passed to the provider as is.
llm.presence_penalty: Passed to the provider as is.
providers.NAME.type: The kind of provider; unset: NAME is the kind.
providers.NAME.api_key: The key, as a variable the worker reads when the agent runs; unset:
  the kind's usual variable (OPENAI_API_KEY, AZURE_OPENAI_API_KEY, ANTHROPIC_API_KEY).
mcp.cache_timeout_ms: The TTL of that older switch.
mcp.cache.eviction_policy: Which entry goes first when the cache is full.
mcp.cache.backend: Where results are kept: each worker's memory.
"""


def _notes(text: str) -> dict[str, str]:
    notes: dict[str, str] = {}
    key = ""
    for line in text.strip().splitlines():
        if line.startswith(" "):
            notes[key] += " " + line.strip()
            continue
        key, _, notes[key] = line.partition(": ")
    for field in AgentLLMConfig.model_fields:
        notes[f"agents.NAME.llm.{field}"] = f"Overrides `[llm] {field}` for this agent."
    for point in _base.HOOK_POINTS[:-1]:  # "all" has its own line
        notes[f"hooks.{point}"] = f"Callbacks at the `{point}` point."
    return notes


NOTES = _notes(NOTES_TEXT)
# Set by the loader, never written in TOML (a file that has it is refused).
INTERNAL = {"nested"}
