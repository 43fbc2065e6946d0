"""The activity types an agent call is recorded under, old and new.

Runs started before the ``agent-activity-type`` patch (workflows/_calls.py) call every agent
as ``run_agent``; since then each agent is its own type, ``agent:NAME``, served by one dynamic
activity on the worker. Why: the Temporal UI, ``temporal workflow show`` and the SDK's own
activity metrics (``activity_type``) label rows by type, and ``run_agent`` told no agent apart.
Whatever reads histories must understand both; this module is the one place that knows them.
"""

from __future__ import annotations

# Every agent, in histories recorded before the patch (and golden histories from then).
RUN_AGENT = "run_agent"
AGENT_TYPE_PREFIX = "agent:"


def agent_activity_type(agent: str) -> str:
    """The activity type ``agent`` runs as: ``agent:NAME``."""
    return f"{AGENT_TYPE_PREFIX}{agent}"


def agent_of(activity_type: str) -> str | None:
    """The agent an ``agent:NAME`` type names; None for any other type (``run_agent``
    names no agent: its input does)."""
    if activity_type.startswith(AGENT_TYPE_PREFIX):
        return activity_type[len(AGENT_TYPE_PREFIX) :]
    return None


def is_agent_call(activity_type: str) -> bool:
    """Whether an activity of this type is an agent call (either form)."""
    return activity_type == RUN_AGENT or activity_type.startswith(AGENT_TYPE_PREFIX)
