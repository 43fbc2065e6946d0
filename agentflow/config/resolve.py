"""What one LLM agent calls: its own ``llm`` table merged over ``[llm]``, the flow's provider
and ``[providers.NAME]`` (``merge_llm`` in agentflow/config/llm.py does the merging)."""

from __future__ import annotations

from agentflow.config.flow import FlowConfig
from agentflow.config.llm import ResolvedLLM, merge_llm, provider_name


def resolve_llm(config: FlowConfig, agent: str) -> ResolvedLLM | None:
    """The LLM ``agent`` calls, None when no provider is named anywhere (the loader refuses
    an LLM agent without one). Pure: safe in workflow code; templates stay unexpanded."""
    spec = config.agents[agent]
    name = provider_name(config.llm, config.agent_flow.provider, spec.llm)
    if not name:
        return None
    return merge_llm(name, config.providers, config.llm, spec.llm)
