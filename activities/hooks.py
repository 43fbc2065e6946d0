"""``[hooks]`` callbacks: calling them, in order, with CallbackArgs.

A callback is ``def callback(args: CallbackArgs) -> State | None`` (or ``async def``). What it
returns is the state that flows on (None keeps the one it got); raising ``FatalError`` rejects
the event. Event hooks run in the ``run_hooks`` activity, agent hooks inside ``run_agent``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, NamedTuple

from temporalio.exceptions import ApplicationError

from agentflow.activities.emit import emitting, emitting_as
from agentflow.activities.registry import AgentRegistry
from agentflow.errors import FatalError
from agentflow.models.flow import CallbackArgs, Event, State


class HookVerdict(NamedTuple):
    """The state the callbacks left, and who rejected the event (and why), if one did."""

    state: State
    rejected_by: str | None = None
    reason: str | None = None


async def call(function: Callable[..., Any], executor: Executor | None, *args: Any) -> Any:
    """Call a handler or callback: ``async def`` directly, ``def`` in the thread pool (in this
    task's context, so that ``emit`` works there: activities/emit.py)."""
    if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - async callable objects
    ):
        return await function(*args)
    context = contextvars.copy_context()
    result = await asyncio.get_running_loop().run_in_executor(
        executor, context.run, function, *args
    )
    if inspect.isawaitable(result):
        result = await result
    return result


async def run_callbacks(
    registry: AgentRegistry,
    executor: Executor | None,
    paths: Sequence[str],
    args: CallbackArgs,
) -> HookVerdict:
    """Call each callback on the state the previous one left; stop at a rejection.

    Any other exception propagates, so the activity is retried like a failing agent.
    """
    state = args.state
    for path in paths:
        callback = registry.get(path)
        if callback is None:
            raise ApplicationError(
                f"hook {path!r} is not registered on this worker; start the worker with the "
                "agentflow.toml that names it (--config)",
                type="AgentConfigError",
                non_retryable=True,
            )
        where = f"{args.hook} hook {path!r}" + (f" of agent {args.agent!r}" if args.agent else "")
        try:
            with emitting_as(f"{args.hook}:{path}", path.rpartition(":")[2], where):
                returned = await call(callback, executor, args.model_copy(update={"state": state}))
        except FatalError as err:
            return HookVerdict(state, path, str(err) or type(err).__name__)
        if isinstance(returned, State):
            state = returned
        elif returned is not None:
            raise ApplicationError(
                f"{args.hook} hook {path!r} returned {type(returned).__name__}; a callback "
                "returns State or None",
                type="HookOutputError",
                non_retryable=True,
            )
    return HookVerdict(state)


async def run_agent_error(
    registry: AgentRegistry,
    executor: Executor | None,
    paths: Sequence[str],
    failure: ApplicationError,
    *,
    agent: str,
    event: Event,
    state: State,
    attempt: int,
    flow: str = "",
) -> None:
    """An agent's ``agent_error`` callbacks for a failure outside its own activity (a tool
    call that failed for good: its message names the agent and the tool). A rejection fails
    the agent, as it does there. ``flow``: the flow, for the events its callbacks emit."""
    args = CallbackArgs(hook="agent_error", event=event, state=state, agent=agent,
                        error=failure.message, error_type=failure.type,
                        attempt=attempt)  # fmt: skip
    async with emitting(registry, flow, event, agent):
        verdict = await run_callbacks(registry, executor, paths, args)
    if verdict.rejected_by:
        raise ApplicationError(
            f"rejected by agent_error hook {verdict.rejected_by}: {verdict.reason}",
            {"attempt": attempt, "rejected_by": verdict.rejected_by},
            type="HookRejected",
            non_retryable=True,
        )
