"""agentflow.toml: the schema (pydantic models) and the loader that turns a bad file into one
clear message naming the file, the key path, what is wrong and what is allowed.

This module is imported by workflow code (the config snapshot travels in the workflow input),
so it must stay free of I/O at import time and of anything non-deterministic in its models.
"""

from agentflow.config._base import (
    DEFAULT_CONFIG_FILE,
    ERROR_KINDS,
    HOOK_POINTS,
    LLM_PROVIDERS,
    MODES,
    ModeName,
)
from agentflow.config.agent import AgentConfig, RetrySettings
from agentflow.config.bus import BusConfig
from agentflow.config.events import ErrorRoutingConfig, HooksConfig, SessionsConfig
from agentflow.config.flow import FlowConfig, FlowMeta, TelemetryConfig, TemporalConfig
from agentflow.config.llm import (
    PROVIDER_KINDS,
    AgentLLMConfig,
    LLMConfig,
    MissingVariable,
    ProviderConfig,
    ResolvedLLM,
    env_vars,
    expand_env,
)
from agentflow.config.loader import load_config, parse_config
from agentflow.config.mcp import MCPCacheConfig, MCPConfig, MCPServerConfig
from agentflow.config.orchestration import OrchestrationConfig
from agentflow.config.resolve import resolve_llm
from agentflow.config.runtime import (
    LoggingConfig,
    RateLimitConfig,
    RetryPolicyConfig,
    RuntimeConfig,
)
from agentflow.config.security import PayloadsConfig, SecurityConfig

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ERROR_KINDS",
    "HOOK_POINTS",
    "LLM_PROVIDERS",
    "MODES",
    "PROVIDER_KINDS",
    "AgentConfig",
    "AgentLLMConfig",
    "BusConfig",
    "ErrorRoutingConfig",
    "FlowConfig",
    "FlowMeta",
    "HooksConfig",
    "LLMConfig",
    "LoggingConfig",
    "MCPCacheConfig",
    "MCPConfig",
    "MCPServerConfig",
    "MissingVariable",
    "ModeName",
    "OrchestrationConfig",
    "PayloadsConfig",
    "ProviderConfig",
    "RateLimitConfig",
    "ResolvedLLM",
    "RetryPolicyConfig",
    "RetrySettings",
    "RuntimeConfig",
    "SecurityConfig",
    "SessionsConfig",
    "TelemetryConfig",
    "TemporalConfig",
    "env_vars",
    "expand_env",
    "load_config",
    "parse_config",
    "resolve_llm",
]
