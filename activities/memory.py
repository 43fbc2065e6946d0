"""The memory activities of memory-enabled agents: ``memory_retrieve`` (what an agent recalls
for its input) and ``memory_remember`` (a turn kept in its session's memory).

They read the worker's ``[agent_memory]`` (``registry.configs``): the snapshot in workflow
input leaves it out, so a connection string never reaches history. A store or embedding
service that is down is a retryable failure (Temporal retries it under the agent's policy);
a setup that a retry cannot fix (a wrong dimension, a missing extension, no [agent_memory])
fails at once, naming the agent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from agentflow import memory
from agentflow.activities.registry import AgentRegistry
from agentflow.config import FlowConfig
from agentflow.errors import ConfigError
from agentflow.models.recall import MemoryHit, Recalled, RecallInput, RememberInput
from agentflow.names import MEMORY_REMEMBER, MEMORY_RETRIEVE

# AgenticGoKit's estimate of a text's tokens: four characters each.
CHARS_PER_TOKEN = 4


class MemoryActivities:
    """The memory activities of one worker, reading its flows' configs."""

    def __init__(self, registry: AgentRegistry) -> None:
        self._registry = registry

    @activity.defn(name=MEMORY_RETRIEVE)
    async def retrieve(self, request: RecallInput) -> Recalled:
        """The best ``max_results`` records for the agent's input, within
        ``rag_max_context_tokens``."""
        config = self._config(request.flow, request.agent)
        async with _failures(request.agent, "recall"):
            hits = await memory.retrieve(config, request.query, session_id=request.session_id)
        settings = memory.memory_of(config)
        return Recalled(hits=_within(hits, settings.rag_max_context_tokens),
                        include_sources=settings.rag_include_sources)  # fmt: skip

    @activity.defn(name=MEMORY_REMEMBER)
    async def remember(self, request: RememberInput) -> int:
        """Store the turn in the session's memory; how many chunks were new."""
        config = self._config(request.flow, request.agent)
        async with _failures(request.agent, "remember its turn"):
            return await memory.remember(config, request.session_id, agent=request.agent,
                                         turn=request.turn, texts=request.texts)  # fmt: skip

    def _config(self, flow: str, agent: str) -> FlowConfig:
        config = self._registry.configs.get(flow)
        if config is None:
            raise ApplicationError(
                f"agent {agent!r}: flow {flow!r} is not served by this worker; start the worker "
                "with its agentflow.toml (--config)",
                type="MemorySetupError", non_retryable=True,
            )  # fmt: skip
        return config


def _within(hits: list[MemoryHit], max_tokens: int) -> list[MemoryHit]:
    """The best hits whose texts fit in ``max_tokens`` together (the first always kept, cut)."""
    kept: list[MemoryHit] = []
    left = max_tokens * CHARS_PER_TOKEN
    for hit in hits:
        if len(hit.text) > left:
            if not kept:
                kept.append(hit.model_copy(update={"text": hit.text[:left]}))
            break
        kept.append(hit)
        left -= len(hit.text)
    return kept


@asynccontextmanager
async def _failures(agent: str, doing: str) -> AsyncIterator[None]:
    """Memory errors as Temporal failures naming the agent: retryable when the store or the
    embedding service is down, not when a retry cannot help."""
    try:
        yield
    except memory.MemoryUnavailable as err:
        wait = timedelta(seconds=err.retry_after) if err.retry_after else None
        why = f"agent {agent!r} could not {doing}: {err}"
        raise ApplicationError(why, type="MemoryUnavailable", next_retry_delay=wait) from None
    except (memory.MemorySetupError, ConfigError) as err:
        why = f"agent {agent!r} could not {doing}: {err}"
        raise ApplicationError(why, type="MemorySetupError", non_retryable=True) from None
