"""The ``batch_deliver`` activity: a batcher's batch recorded in its subscriber's session, as
one event (workflows/batcher.py). Retrying it is safe: the batch event's id is a digest of its
events' ids, and the session dedupes event ids."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from agentflow.client.sessions import emit
from agentflow.errors import ConfigError
from agentflow.models.batcher import BatchSend
from agentflow.names import BATCH_DELIVER_ACTIVITY


@activity.defn(name=BATCH_DELIVER_ACTIVITY)
async def batch_deliver(send: BatchSend) -> str:
    """Record the batch event; returns the session's workflow id."""
    try:
        handle = await emit(activity.client(), send.config, send.task_queue, send.event)
    except ConfigError as err:  # an event the session can never take: retrying cannot help
        raise ApplicationError(str(err), type="BatchRefused", non_retryable=True) from None
    return handle.workflow_id
