"""Client calls that ride out the soak's own faults (the server down for a while): a call is
tried again, with the same ids, until it goes through or ``SOAK_PATIENCE`` seconds pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.client import RPCTimeoutOrCancelledError, WorkflowFailureError
from temporalio.service import RPCError

T = TypeVar("T")
PATIENCE_SECONDS = 180.0


async def patiently(call: Callable[[], Awaitable[T]], what: str) -> T:
    """``call()`` again after an RPC error or a timeout (the server restarting, a worker
    not answering yet); any other error, and a workflow's failure, propagate."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            return await call()
        except WorkflowFailureError:
            raise
        # An Update's wait cut short by a server restart raises RPCTimeoutOrCancelledError.
        except (RPCError, RPCTimeoutOrCancelledError, asyncio.TimeoutError, ConnectionError) as err:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: still failing after {PATIENCE_SECONDS:g}s: "
                                   f"{err}") from err  # fmt: skip
            await asyncio.sleep(1.0)
