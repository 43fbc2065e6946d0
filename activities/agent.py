"""The agent activity (``agent:NAME``, formerly ``run_agent``): one agent invocation, with
Temporal owning the retries.

Error mapping (why): a plain exception from a handler is retried by the activity's RetryPolicy
(bounded, from agentflow.toml); ``FatalError`` and a bad output are non-retryable, because no
retry can fix them and an unbounded retry would hide the failure. The mapping is in
``agent_failures.py``; the checks of what an agent returns are in ``agent_output.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

import pydantic_core
from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from agentflow.activities.agent_failures import as_failure, short_failures
from agentflow.activities.agent_output import bad_output, output_state, state_limit
from agentflow.activities.approvals import approved_event, asked_output
from agentflow.activities.breaker import (
    FALLING_BACK,
    Breakers,
    after_failure,
    after_success,
    fail_fast,
    fallback_request,
)
from agentflow.activities.cache import cacheable, cached_output, store_output
from agentflow.activities.emit import emitting, emitting_as
from agentflow.activities.heartbeat import heartbeating
from agentflow.activities.hooks import call, run_callbacks
from agentflow.activities.registry import AgentRegistry
from agentflow.activities.tokens import announce_retry
from agentflow.config.registered import code_handler, is_code
from agentflow.errors import ApprovalRequired
from agentflow.models.flow import (
    AgentInput,
    AgentOutput,
    AgentResult,
    CallbackArgs,
    Event,
    HookInput,
    HookOutput,
    State,
)
from agentflow.models.llm import LLMReply
from agentflow.names import RUN_AGENT, RUN_HOOKS, agent_of

# A batch of local agents (activities/batch.py) runs several agents in one activity: each agent
# has its own attempt, which the batch sets here; any other call's is the activity's.
BATCH_ATTEMPT: ContextVar[int | None] = ContextVar("batch_attempt", default=None)


def agent_attempt() -> int:
    """The attempt of the agent this activity runs now (what its result and hooks report)."""
    own = BATCH_ATTEMPT.get()
    return activity.info().attempt if own is None else own


class AgentActivities:
    """Holds the worker's registry and thread pool; ``run_named_agent`` (every ``agent:NAME``
    type) and ``run_agent`` (runs from before the patch) are the agent activity."""

    def __init__(self, registry: AgentRegistry, executor: Executor | None = None) -> None:
        self._registry = registry
        self._executor = executor
        self._breakers = Breakers()  # this worker's, in memory (activities/breaker.py says why)

    @activity.defn(name=RUN_AGENT)
    async def run_agent(self, request: AgentInput) -> AgentOutput:
        info = activity.info()
        started_at = datetime.now(timezone.utc)
        event = approved_event(request)  # metadata says who approved, if someone did
        hooks = request.hooks
        state = request.state.clone()
        # Watchers see Temporal's retries (regular agents only: activities/tokens.py says why).
        await announce_retry(request.agent, request.event.id, attempt=agent_attempt())
        limited = request.spec.rate_limit is not None
        cached = cacheable(request)  # cache = {...}: a hit runs nothing (activities/cache.py)
        if cached and (hit := await cached_output(self._registry, request, agent_attempt())):
            return hit
        config = self._registry.configs.get(request.flow)
        breakers = self._breakers.of(request, config)  # circuit breakers (activities/breaker.py)
        if breakers and (open_now := fail_fast(breakers)):
            if (instead := fallback_request(request, config)) is None:
                raise open_now
            falling_back = FALLING_BACK.set(True)
            try:  # fallback_agent: runs in this agent's place, in this activity
                ran = await self.run_agent(instead)
            finally:
                FALLING_BACK.reset(falling_back)
            return ran.model_copy(
                update={
                    "breaker": f"{open_now.message.split(':')[0]}: "
                    f"ran fallback agent {instead.agent!r}"
                }
            )
        async with (
            short_failures(),
            heartbeating(info.heartbeat_timeout),
            # emit() from its handler and hooks: sent before the activity ends (activities/emit.py)
            emitting(self._registry, request.flow, event, request.agent, rate_limited=limited),
        ):
            # An LLM agent's later model steps (request.turn) go on with the hooked state.
            if hooks and hooks.before_agent_run and request.turn is None:
                state = await self._agent_hooks(
                    "before_agent_run", hooks.before_agent_run, request, event, state
                )
            try:
                result = await self._call(request, event, state)
            except Exception as err:
                if hooks and hooks.agent_error:
                    await self._agent_hooks(
                        "agent_error", hooks.agent_error, request, event, state, error=err
                    )
                failure = as_failure(err, agent_attempt(), request.agent)
                if breakers:
                    failure = after_failure(breakers, failure)
                if failure is err:
                    raise
                raise failure from err
            closed = after_success(breakers) if breakers else None
            if isinstance(result, ApprovalRequired):  # not a failure: the run waits for a person
                return asked_output(request, result, started_at, agent_attempt())
            usage = result.usage if isinstance(result, LLMReply) else None
            tokens = result.tokens if isinstance(result, LLMReply) else None
            if isinstance(result, LLMReply):
                if result.turn is not None:  # tool calls: the workflow runs them, then asks again
                    asking = AgentOutput(state=state, started_at=started_at, usage=usage,
                                         ended_at=datetime.now(timezone.utc),
                                         attempt=agent_attempt(), turn=result.turn,
                                         tokens=tokens)  # fmt: skip
                    if (size := len(pydantic_core.to_json(asking))) > state_limit(info.is_local):
                        raise bad_output(request.agent, f"has a conversation of {size / 1e6:.1f}"
                                          " MB with its tool results; keep tool results small "
                                          "(a reference, not the data)")  # fmt: skip
                    return asking
                result = result.update
            limit = state_limit(info.is_local)
            if isinstance(result, dict):  # onto this call's own copy: no second clone
                state.data.update(result)
                result = None
            output = output_state(request.agent, state, result, limit)
            if hooks and hooks.after_agent_run:
                done = AgentResult(
                    agent=request.agent, status="completed", attempt=agent_attempt(),
                    started_at=started_at, ended_at=datetime.now(timezone.utc),
                )  # fmt: skip
                changed = await self._agent_hooks(
                    "after_agent_run", hooks.after_agent_run, request, event, output, done=done
                )
                output = output_state(request.agent, output, changed, limit)
        if request.memory is not None:
            output.context.pop(MEMORY_KEY, None)  # recalled for this call, not the session's
        finished = AgentOutput(
            state=output, started_at=started_at, usage=usage,
            ended_at=datetime.now(timezone.utc), attempt=agent_attempt(), breaker=closed,
        )  # fmt: skip
        if cached:  # a hit streams nothing: the reply's tokens are not stored
            await store_output(self._registry, request, finished)
        return finished.model_copy(update={"tokens": tokens}) if tokens else finished

    @activity.defn(dynamic=True)
    async def run_named_agent(self, args: Sequence[RawValue]) -> AgentOutput:
        """``agent:NAME``, each agent's own activity type (agentflow/names.py): the
        same work as ``run_agent``, under a type that Temporal's UI and metrics show."""
        kind = activity.info().activity_type
        if agent_of(kind) is None:  # the SDK's own words for a type nobody registered
            raise ApplicationError(
                f"Activity function {kind} is not registered on this worker (agentflow serves "
                "agent:NAME, run_agent, run_hooks, session_checkpoint, bus_publish)",
                type="NotFoundError",
            )
        return await self.run_agent(agent_request(args))

    @activity.defn(name=RUN_HOOKS)
    async def run_hooks(self, request: HookInput) -> HookOutput:
        """An event hook point (before/after_event_handling): its callbacks, in order."""
        args = CallbackArgs(hook=request.hook, event=request.event, state=request.state,
                            error=request.error, attempt=activity.info().attempt)  # fmt: skip
        async with short_failures(), emitting(self._registry, request.flow, request.event):
            verdict = await run_callbacks(self._registry, self._executor, request.callbacks, args)
        return HookOutput(state=verdict.state, rejected_by=verdict.rejected_by,
                          reason=verdict.reason)  # fmt: skip

    async def _agent_hooks(
        self,
        hook: str,
        paths: list[str],
        request: AgentInput,
        event: Event,
        state: State,
        *,
        error: BaseException | None = None,
        done: AgentResult | None = None,
    ) -> State:
        """Run agent-level callbacks; a rejection fails the agent without retrying."""
        args = CallbackArgs(
            hook=hook, event=event, state=state, agent=request.agent, agent_result=done,
            error=None if error is None else (str(error) or repr(error)),
            error_type=None if error is None else type(error).__name__,
            attempt=agent_attempt(),
        )  # fmt: skip
        verdict = await run_callbacks(self._registry, self._executor, paths, args)
        if verdict.rejected_by:
            raise ApplicationError(
                f"rejected by {hook} hook {verdict.rejected_by}: {verdict.reason}",
                {"attempt": agent_attempt(), "rejected_by": verdict.rejected_by},
                type="HookRejected",
                non_retryable=True,
            )
        return verdict.state

    async def _call(self, request: AgentInput, event: Event, state: State) -> Any:
        path = request.spec.handler
        if path is None and code_handler(request.agent) in self._registry:
            raise _fatal(request.agent, CODE_NOT_LLM)
        if path is None:
            # Imported when an LLM agent first runs: workers of flows without any start faster.
            from agentflow.activities.llm import call_llm

            return await call_llm(request, state, self._registry)
        handler = self._registry.get(path)
        if handler is None and is_code(path):
            raise _fatal(request.agent, CODE_NOT_HERE)
        if handler is None:
            raise _fatal(
                request.agent,
                f"handler {path!r} is not registered on this worker; start the worker "
                "with the agentflow.toml that names it (--config)",
            )
        if request.memory is not None:  # memory_enabled: what it recalled, for this call only
            state.context[MEMORY_KEY] = [hit.model_dump() for hit in request.memory.hits]
        try:
            with emitting_as(request.agent, request.agent, f"agent {request.agent!r}"):
                return await call(handler, self._executor, event, state)
        except ApprovalRequired as asked:  # raised or returned: the same request
            return asked


def agent_request(args: Sequence[object]) -> AgentInput:
    """The AgentInput of a dynamic ``agent:NAME`` call: raw payloads, or the model that
    AgentCallInterceptor (agentflow/worker/telemetry.py) already decoded from them (decoded once:
    a state may be megabytes)."""
    [arg] = args
    if isinstance(arg, AgentInput):
        return arg
    if not isinstance(arg, RawValue):
        raise TypeError(f"an agent call takes one AgentInput, not {type(arg).__name__}")
    request: AgentInput = activity.payload_converter().from_payload(arg.payload, AgentInput)
    return request


# A run whose client did not know the code registration, and a worker that lacks it.
CODE_NOT_LLM = (
    "is registered in code on this worker, but the run was started with a flow file that makes "
    "it an LLM agent: name the module that registers it in [agent_flow] agent_modules, or "
    "start runs from the runner that registers it"
)
CODE_NOT_HERE = (
    "is registered in code, but not on this worker: start the worker with --agents MODULE "
    "(or [agent_flow] agent_modules), or serve the flow from the runner that registers it"
)


# Where a memory-enabled handler agent finds what it recalled: state.context["memory"].
MEMORY_KEY = "memory"


def _fatal(agent: str, why: str) -> ApplicationError:
    return ApplicationError(f"agent {agent!r} {why}", type="AgentConfigError", non_retryable=True)


__all__ = ["AgentActivities", "Event", "output_state"]
