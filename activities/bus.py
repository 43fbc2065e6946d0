"""The ``bus_publish`` activity: an agent's ``meta["publish"]`` recorded on the durable bus.

Workflow code cannot signal-with-start, so the publish is an activity (a local one: no extra
server round trip). Retrying it is safe: the bus shard dedupes the event id, which the workflow
derives from its run, the agent's activity id and the topic.
"""

from __future__ import annotations

from temporalio import activity

from agentflow.client.bus import publish
from agentflow.models.bus import PublishRequest
from agentflow.names import PUBLISH_ACTIVITY


@activity.defn(name=PUBLISH_ACTIVITY)
async def bus_publish(request: PublishRequest) -> str:
    """Record the publish; returns the bus session (shard) that took it."""
    handle = await publish(activity.client(), request)
    return handle.session_id
