"""The ``batch_deliver`` activity: a batcher's batch recorded in its subscriber's session, as
one event (workflows/batcher.py), and, when ``send.wait``, its outcome awaited there (processed
or dead-lettered event by event), heartbeating meanwhile. Retrying it is safe: the batch
event's id is a digest of its events' ids, and the session dedupes event ids; asking for an
outcome again changes nothing."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity
from temporalio.exceptions import ApplicationError

from agentflow.client.sessions import emit
from agentflow.errors import ConfigError
from agentflow.models.batcher import HEARTBEAT_SECONDS, BatchSend
from agentflow.names import BATCH_DELIVER_ACTIVITY


@activity.defn(name=BATCH_DELIVER_ACTIVITY)
async def batch_deliver(send: BatchSend) -> str:
    """Record the batch event (and wait for its outcome); returns the session's workflow id,
    and with ``wait`` the outcome's status after a space."""
    try:
        handle = await emit(activity.client(), send.config, send.task_queue, send.event)
    except ConfigError as err:  # an event the session can never take: retrying cannot help
        raise ApplicationError(str(err), type="BatchRefused", non_retryable=True) from None
    if not send.wait:
        return handle.workflow_id
    beating = asyncio.create_task(_heartbeat())
    try:  # the session dead-letters a batch that fails for good, event by event
        outcome = await handle.outcome()
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
    return f"{handle.workflow_id} {outcome.status}"


async def _heartbeat() -> None:
    """While the batch runs: a worker that died is noticed within the heartbeat timeout."""
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_SECONDS / 4)
