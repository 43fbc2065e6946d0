"""What a run shows in the Temporal UI and its filter box: search attributes, a one-line
summary and the details on its page. Pure functions of the config: workflow code uses them for
child flows, the client for the runs it starts."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from agentflow.config import FlowConfig
from agentflow.names import FLOW, MODE, SESSION


def search_attributes(config: FlowConfig, session_id: str | None) -> TypedSearchAttributes:
    pairs = [SearchAttributePair(FLOW, config.name), SearchAttributePair(MODE, config.mode)]
    if session_id:
        pairs.append(SearchAttributePair(SESSION, session_id))
    return TypedSearchAttributes(pairs)


def static_summary(config: FlowConfig, data: dict[str, Any]) -> str:
    """One line for the UI's run list: flow, mode and a digest that tells inputs apart."""
    return f"{config.name} · {config.mode} · input {input_digest(data)}"


def static_details(config: FlowConfig, session_id: str | None) -> str:
    """Markdown shown on the run's page in the UI."""
    orch = config.orchestration
    plan = {
        "sequential": " → ".join(orch.sequential_agents),
        "collaborative": " ∥ ".join(orch.collaborative_agents),
        "mixed": " ∥ ".join(orch.collaborative_agents)
        + " then "
        + " → ".join(orch.sequential_agents),
        "loop": f"{orch.loop_agent} (up to {orch.max_iterations} iterations)",
        "route": f"route from {orch.entry_agent or 'the event target'} via meta.route",
    }[config.mode]
    lines = [f"**{config.name}** ({config.mode} mode, config v{config.agent_flow.version})",
             "", f"Agents: {plan}"]  # fmt: skip
    if session_id:
        lines.append(f"Session: `{session_id}`")
    return "\n".join(lines)


def input_digest(data: dict[str, Any]) -> str:
    encoded = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:12]
