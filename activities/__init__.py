"""All I/O of agentflow lives here: the agent activity and the LLM providers it may call."""

from agentflow.activities.agent import AgentActivities

__all__ = ["AgentActivities"]
