"""A failure inside the agent activity as Temporal should see it: ``as_failure`` decides what
is retried, ``short_failures`` keeps a failure's message within MAX_MESSAGE_CHARS."""

from __future__ import annotations

import contextlib
import reprlib
from collections.abc import AsyncIterator

import pydantic
from temporalio.exceptions import ApplicationError

from agentflow.errors import FatalError
from agentflow.limits import MAX_MESSAGE_CHARS, shorten
from agentflow.models.flow import Event, State


def as_failure(err: Exception, attempt: int, agent: str) -> ApplicationError:
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
                f"agent {agent!r} built an invalid {err.title}: {validation_line(err)}",
                details, type="AgentOutputError", non_retryable=True,
            )  # fmt: skip
        return ApplicationError(f"{err.title}: {validation_line(err)}", details,
                                type=type(err).__name__)  # fmt: skip
    return ApplicationError(str(err) or repr(err), details, type=type(err).__name__)


def validation_line(err: pydantic.ValidationError) -> str:
    """A pydantic error on one line: each problem's field path, message and input."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']} "
        f"(got {reprlib.repr(e.get('input'))})"
        for e in err.errors()
    )


@contextlib.asynccontextmanager
async def short_failures() -> AsyncIterator[None]:
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
