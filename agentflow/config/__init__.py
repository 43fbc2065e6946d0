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
from agentflow.config.bus import BusConfig
from agentflow.config.events import ErrorRoutingConfig, HooksConfig, SessionsConfig
from agentflow.config.flow import (
    AgentConfig,
    FlowConfig,
    FlowMeta,
    LLMConfig,
    OrchestrationConfig,
    RetrySettings,
    TelemetryConfig,
    TemporalConfig,
)
from agentflow.config.loader import load_config, parse_config
from agentflow.config.security import PayloadsConfig, SecurityConfig

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ERROR_KINDS",
    "HOOK_POINTS",
    "LLM_PROVIDERS",
    "MODES",
    "AgentConfig",
    "BusConfig",
    "ErrorRoutingConfig",
    "FlowConfig",
    "FlowMeta",
    "HooksConfig",
    "LLMConfig",
    "ModeName",
    "OrchestrationConfig",
    "PayloadsConfig",
    "RetrySettings",
    "SecurityConfig",
    "SessionsConfig",
    "TelemetryConfig",
    "TemporalConfig",
    "load_config",
    "parse_config",
]
