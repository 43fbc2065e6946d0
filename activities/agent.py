"""The ``run_agent`` activity: one agent invocation, with Temporal owning the retries.

Error mapping (why): a plain exception from a handler is retried by the activity's RetryPolicy
(bounded, from agentflow.toml); ``FatalError`` and a bad output are non-retryable, because no
retry can fix them and an unbounded retry would hide the failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from datetime import datetime, timedelta, timezone
from typing import Any

import pydantic_core
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.llm import call_llm
from agentflow.errors import FatalError
from agentflow.models import AgentInput, AgentOutput, Event, State
from agentflow.registry import AgentRegistry

# Temporal rejects payloads over 2 MB (blob size limit); fail before sending one.
MAX_STATE_BYTES = 2 * 1024 * 1024 - 64 * 1024
# A local activity's result travels in the completion of the workflow task, together with every
# other local result since the last one, and that message is limited to 4 MB: five 1 MB local
# results get the run terminated (GrpcMessageTooLarge). Local agents get a much smaller limit.
MAX_LOCAL_STATE_BYTES = 256 * 1024


class AgentActivities:
    """Holds the worker's registry and thread pool; ``run_agent`` is the activity."""

    def __init__(self, registry: AgentRegistry, executor: Executor | None = None) -> None:
        self._registry = registry
        self._executor = executor

    @activity.defn(name="run_agent")
    async def run_agent(self, request: AgentInput) -> AgentOutput:
        info = activity.info()
        started_at = datetime.now(timezone.utc)
        async with _heartbeating(info.heartbeat_timeout):
            try:
                result = await self._call(request)
            except ApplicationError:
                raise
            except FatalError as err:
                raise ApplicationError(
                    str(err),
                    {"attempt": info.attempt},
                    type="FatalError",
                    non_retryable=True,
                ) from err
            except Exception as err:
                raise ApplicationError(
                    str(err) or repr(err),
                    {"attempt": info.attempt},
                    type=type(err).__name__,
                ) from err
        limit = MAX_LOCAL_STATE_BYTES if info.is_local else MAX_STATE_BYTES
        state = output_state(request.agent, request.state, result, limit)
        return AgentOutput(
            state=state,
            started_at=started_at,
            ended_at=datetime.now(timezone.utc),
            attempt=info.attempt,
        )

    async def _call(self, request: AgentInput) -> Any:
        event = request.event.model_copy(update={"target_agent": request.agent})
        state = request.state.clone()
        path = request.spec.handler
        if path is None:
            if request.llm is None:
                raise _fatal(request.agent, "has no handler and the flow has no [llm] provider")
            return await call_llm(request.agent, request.spec, request.llm, state, self._executor)
        handler = self._registry.get(path)
        if handler is None:
            raise _fatal(
                request.agent,
                f"handler {path!r} is not registered on this worker; start the worker "
                "with the agentflow.toml that names it (--config)",
            )
        if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
        ):
            return await handler(event, state)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, handler, event, state)
        if inspect.isawaitable(result):
            result = await result
        return result


def output_state(
    agent: str, input_state: State, result: Any, limit: int = MAX_STATE_BYTES
) -> State:
    """Turn what a handler returned into the state passed on, or fail without retrying."""
    if result is None:
        state = input_state
    elif isinstance(result, State):
        state = result
    elif isinstance(result, dict):
        state = input_state.clone()
        state.data.update(result)
    else:
        raise _bad_output(
            agent, f"returned {type(result).__name__}; a handler returns State, dict or None"
        )
    try:
        encoded = pydantic_core.to_json(state)
    except pydantic_core.PydanticSerializationError as err:
        raise _bad_output(
            agent, f"returned a state that cannot be serialised to JSON: {err}"
        ) from None
    if len(encoded) > limit:
        if limit == MAX_STATE_BYTES:
            why = "Temporal payloads are limited to 2 MB, so keep"
        else:
            why = (
                f"agents with local = true are limited to {limit // 1024} KB (their results "
                "share one 4 MB workflow task completion); set local = false for this agent, "
                "or keep"
            )
        raise _bad_output(
            agent,
            f"returned a state of {len(encoded) / 1e6:.1f} MB; {why} large data outside the "
            "state and pass a reference",
        )
    if not all(isinstance(value, str) for value in state.meta.values()):
        raise _bad_output(agent, "returned state.meta with non-string values")
    return state


def _bad_output(agent: str, why: str) -> ApplicationError:
    return ApplicationError(f"agent {agent!r} {why}", type="AgentOutputError", non_retryable=True)


def _fatal(agent: str, why: str) -> ApplicationError:
    return ApplicationError(f"agent {agent!r} {why}", type="AgentConfigError", non_retryable=True)


@contextlib.asynccontextmanager
async def _heartbeating(timeout: timedelta | None) -> AsyncIterator[None]:
    """Heartbeat while the handler runs, so a crashed worker's attempt is retried promptly."""
    if not timeout:
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(timeout.total_seconds() / 3)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = ["AgentActivities", "Event", "output_state"]
