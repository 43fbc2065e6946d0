"""The agent activity (``agent:NAME``, formerly ``run_agent``): one agent invocation, with
Temporal owning the retries.

Error mapping (why): a plain exception from a handler is retried by the activity's RetryPolicy
(bounded, from agentflow.toml); ``FatalError`` and a bad output are non-retryable, because no
retry can fix them and an unbounded retry would hide the failure.
"""

from __future__ import annotations

import contextlib
import reprlib
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Executor
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

import pydantic
import pydantic_core
from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from agentflow.activities.approvals import approved_event, asked_output
from agentflow.activities.heartbeat import heartbeating
from agentflow.activities.hooks import call, run_callbacks
from agentflow.activities.registry import AgentRegistry
from agentflow.activities.tokens import announce_retry
from agentflow.client.payloads import stored_payload_limit
from agentflow.errors import ApprovalRequired, FatalError
from agentflow.limits import MAX_MESSAGE_CHARS, data_problem, shorten
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

# Temporal rejects payloads over 2 MB (blob size limit); fail before sending one.
MAX_STATE_BYTES = 2 * 1024 * 1024 - 64 * 1024
# A local activity's result travels in the completion of the workflow task, together with every
# other local result since the last one, and that message is limited to 4 MB: five 1 MB local
# results get the run terminated (GrpcMessageTooLarge). Local agents get a much smaller limit.
MAX_LOCAL_STATE_BYTES = 256 * 1024


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

    @activity.defn(name=RUN_AGENT)
    async def run_agent(self, request: AgentInput) -> AgentOutput:
        info = activity.info()
        started_at = datetime.now(timezone.utc)
        event = approved_event(request)  # metadata says who approved, if someone did
        hooks = request.hooks
        state = request.state.clone()
        # Watchers see Temporal's retries (regular agents only: agentflow/tokens.py says why).
        await announce_retry(request.agent, request.event.id, attempt=agent_attempt())
        async with _short_failures(), heartbeating(info.heartbeat_timeout):
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
                failure = _as_failure(err, agent_attempt(), request.agent)
                if failure is err:
                    raise
                raise failure from err
            if isinstance(result, ApprovalRequired):  # not a failure: the run waits for a person
                return asked_output(request, result, started_at, agent_attempt())
            usage = result.usage if isinstance(result, LLMReply) else None
            if isinstance(result, LLMReply):
                if result.turn is not None:  # tool calls: the workflow runs them, then asks again
                    asking = AgentOutput(state=state, started_at=started_at, usage=usage,
                                         ended_at=datetime.now(timezone.utc),
                                         attempt=agent_attempt(), turn=result.turn)  # fmt: skip
                    if (size := len(pydantic_core.to_json(asking))) > state_limit(info.is_local):
                        raise _bad_output(request.agent, f"has a conversation of {size / 1e6:.1f}"
                                          " MB with its tool results; keep tool results small "
                                          "(a reference, not the data)")  # fmt: skip
                    return asking
                result = result.update
            limit = state_limit(info.is_local)
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
        return AgentOutput(
            state=output,
            started_at=started_at,
            ended_at=datetime.now(timezone.utc),
            attempt=agent_attempt(),
            usage=usage,
        )

    @activity.defn(dynamic=True)
    async def run_named_agent(self, args: Sequence[RawValue]) -> AgentOutput:
        """``agent:NAME``, each agent's own activity type (agentflow/activity_types.py): the
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
        async with _short_failures():
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
        if path is None:
            # Imported when an LLM agent first runs: workers of flows without any start faster.
            from agentflow.activities.llm import call_llm

            return await call_llm(request, state, self._registry)
        handler = self._registry.get(path)
        if handler is None:
            raise _fatal(
                request.agent,
                f"handler {path!r} is not registered on this worker; start the worker "
                "with the agentflow.toml that names it (--config)",
            )
        try:
            return await call(handler, self._executor, event, state)
        except ApprovalRequired as asked:  # raised or returned: the same request
            return asked


def agent_request(args: Sequence[object]) -> AgentInput:
    """The AgentInput of a dynamic ``agent:NAME`` call: raw payloads, or the model that
    AgentCallInterceptor (agentflow/telemetry.py) already decoded from them (decoded once:
    a state may be megabytes)."""
    [arg] = args
    if isinstance(arg, AgentInput):
        return arg
    if not isinstance(arg, RawValue):
        raise TypeError(f"an agent call takes one AgentInput, not {type(arg).__name__}")
    request: AgentInput = activity.payload_converter().from_payload(arg.payload, AgentInput)
    return request


def _as_failure(err: Exception, attempt: int, agent: str) -> ApplicationError:
    """A handler's exception as Temporal sees it: FatalError is not retried, others are.

    A pydantic error from building agentflow's own State or Event is a bad output like any
    other (no retry can fix the code that built it); any pydantic error becomes one line.
    """
    if isinstance(err, ApplicationError):
        return err
    # The agent in the details too: a failed activity's row in the UI and in `temporal
    # workflow show --detailed` shows them, and a handler's message rarely names its agent.
    details = {"attempt": attempt, "agent": agent}
    if isinstance(err, FatalError):
        return ApplicationError(str(err), details, type="FatalError", non_retryable=True)
    if isinstance(err, pydantic.ValidationError):
        if err.title in (State.__name__, Event.__name__):
            return ApplicationError(
                f"agent {agent!r} built an invalid {err.title}: {_one_line(err)}",
                details, type="AgentOutputError", non_retryable=True,
            )  # fmt: skip
        return ApplicationError(f"{err.title}: {_one_line(err)}", details,
                                type=type(err).__name__)  # fmt: skip
    return ApplicationError(str(err) or repr(err), details, type=type(err).__name__)


def _one_line(err: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']} "
        f"(got {reprlib.repr(e.get('input'))})"
        for e in err.errors()
    )


def state_limit(is_local: bool) -> int:
    """The largest state an agent may return: a local agent's is fixed (it travels in the
    workflow task completion, which an external store does not relieve); a regular agent's is
    the [payloads] store's maximum when the worker's converter has one, else Temporal's 2 MB."""
    if is_local:
        return MAX_LOCAL_STATE_BYTES
    try:
        stored = stored_payload_limit(activity.client().data_converter)
    except RuntimeError:  # no client (an activity run outside a worker, in unit tests)
        stored = None
    return MAX_STATE_BYTES if stored is None else stored


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
    if problem := _state_problem(state):
        raise _bad_output(agent, f"returned {problem}")
    try:
        encoded = pydantic_core.to_json(state)
    except pydantic_core.PydanticSerializationError as err:
        raise _bad_output(
            agent, f"returned a state that cannot be serialised to JSON: {err}"
        ) from None
    if len(encoded) > limit:
        if limit == MAX_STATE_BYTES:
            why = "Temporal payloads are limited to 2 MB (or set a [payloads] store), so keep"
        elif limit == MAX_LOCAL_STATE_BYTES:
            why = (
                f"agents with local = true are limited to {limit // 1024} KB (their results "
                "share one 4 MB workflow task completion); set local = false for this agent, "
                "or keep"
            )
        else:
            why = f"the [payloads] store takes at most {limit / 1e6:.1f} MB (max_bytes), so keep"
        raise _bad_output(
            agent,
            f"returned a state of {len(encoded) / 1e6:.1f} MB; {why} large data outside the "
            "state and pass a reference",
        )
    return state


def _state_problem(state: State) -> str | None:
    """What in a returned state Temporal's JSON converter would change (NaN becomes null) or
    refuse, with its key path: checked here, it fails the agent, never the workflow task."""
    for key, value in state.meta.items():
        if not (isinstance(key, str) and isinstance(value, str)):
            return (
                f"state.meta[{reprlib.repr(key)}] = {reprlib.repr(value)}; meta keys and values "
                "are strings (routing and topics)"
            )
    for part in ("meta", "data", "context"):
        if problem := data_problem(getattr(state, part), root=f"state.{part}"):
            return problem
    return None


def _bad_output(agent: str, why: str) -> ApplicationError:
    return ApplicationError(f"agent {agent!r} {why}", type="AgentOutputError", non_retryable=True)


@contextlib.asynccontextmanager
async def _short_failures() -> AsyncIterator[None]:
    """Cut a failure's message to MAX_MESSAGE_CHARS.

    Why: a failure is recorded in history like any payload; with a 5 MB message the server
    refuses the activity's completion, and the run sees a timeout instead of the error.
    """
    try:
        yield
    except Exception as err:
        message = err.message if isinstance(err, ApplicationError) else str(err)
        if len(message) <= MAX_MESSAGE_CHARS:
            raise
        short = ApplicationError(
            shorten(message),
            *(err.details if isinstance(err, ApplicationError) else ()),
            type=err.type if isinstance(err, ApplicationError) else type(err).__name__,
            non_retryable=isinstance(err, ApplicationError) and err.non_retryable,
        )
        # Not chained: the cause would carry the whole message again.
        raise short.with_traceback(err.__traceback__) from None


def _fatal(agent: str, why: str) -> ApplicationError:
    return ApplicationError(f"agent {agent!r} {why}", type="AgentConfigError", non_retryable=True)


__all__ = ["AgentActivities", "Event", "output_state"]
