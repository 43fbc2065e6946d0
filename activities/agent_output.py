"""What an agent returns, checked before it leaves the activity: ``output_state`` turns a
handler's result into the state passed on, within the size Temporal takes (``state_limit``),
or fails the agent without retrying (``bad_output``)."""

from __future__ import annotations

import reprlib
from typing import Any

import pydantic
import pydantic_core
from temporalio import activity
from temporalio.exceptions import ApplicationError

from agentflow.activities.agent_failures import validation_line
from agentflow.client.payloads import stored_payload_limit
from agentflow.limits import data_problem
from agentflow.models.flow import State

# Temporal rejects payloads over 2 MB (blob size limit); fail before sending one.
MAX_STATE_BYTES = 2 * 1024 * 1024 - 64 * 1024
# A local activity's result travels in the completion of the workflow task, together with every
# other local result since the last one, and that message is limited to 4 MB: five 1 MB local
# results get the run terminated (GrpcMessageTooLarge). Local agents get a much smaller limit.
MAX_LOCAL_STATE_BYTES = 256 * 1024


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
        raise bad_output(
            agent, f"returned {type(result).__name__}; a handler returns State, dict or None"
        )
    if problem := _state_problem(state):
        raise bad_output(agent, f"returned {problem}")
    if state is result:
        state = _checked(agent, state)
    try:
        encoded = pydantic_core.to_json(state)
    except pydantic_core.PydanticSerializationError as err:
        raise bad_output(
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
        raise bad_output(
            agent,
            f"returned a state of {len(encoded) / 1e6:.1f} MB; {why} large data outside the "
            "state and pass a reference",
        )
    return state


def _checked(agent: str, state: State) -> State:
    """A State the handler built, validated again: ``State.model_construct`` or a field set
    after construction skips validation, and a bad field found only when the workflow decodes
    the result would fail its workflow task again and again instead of the agent once."""
    try:
        return State.model_validate(
            {"data": state.data, "meta": state.meta, "context": state.context}
        )
    except pydantic.ValidationError as err:
        raise bad_output(agent, f"built an invalid State: {validation_line(err)}") from None


def _state_problem(state: State) -> str | None:
    """What in a returned state Temporal's JSON converter would change (NaN becomes null) or
    refuse, with its key path: checked here, it fails the agent, never the workflow task."""
    for key, value in state.meta.items() if isinstance(state.meta, dict) else ():
        if not (isinstance(key, str) and isinstance(value, str)):
            return (
                f"state.meta[{reprlib.repr(key)}] = {reprlib.repr(value)}; meta keys and values "
                "are strings (routing and topics)"
            )
    for part in ("meta", "data", "context"):
        if problem := data_problem(getattr(state, part), root=f"state.{part}"):
            return problem
    return None


def bad_output(agent: str, why: str) -> ApplicationError:
    """The agent's output cannot be passed on: a non-retryable ``AgentOutputError``."""
    return ApplicationError(f"agent {agent!r} {why}", type="AgentOutputError", non_retryable=True)
