"""One event through a flow: event hooks around the mode, and error routing when an agent fails
for good. Every mode workflow and the session workflow handle their events here.

Deterministic code only. Hook callbacks do I/O, so they run in the ``run_hooks`` activity
(event hooks) or inside the agent's own ``run_agent`` activity (agent hooks, no extra round
trip). Nothing is scheduled when a flow has no hooks and no ``[error_routing]``, so flows
without them keep the commands (and the golden histories) they had.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream

    from agentflow.config import FlowConfig
    from agentflow.models.flow import (
        AgentResult,
        FlowInput,
        FlowResult,
        HookInput,
        HookOutput,
        State,
    )
    from agentflow.names import RUN_HOOKS
    from agentflow.workflows._calls import retry_policy
    from agentflow.workflows._compensate import compensate
    from agentflow.workflows._failures import StepFailed
    from agentflow.workflows._steps import FlowRun
    from agentflow.workflows._stream import RunStream

HOOK_TIMEOUT_SECONDS = 60.0

ModeBody = Callable[[FlowRun], Awaitable[FlowResult]]


async def handle_event(run: FlowRun, body: ModeBody) -> FlowResult:
    """Run the mode's ``body`` between the event hooks; route a failed agent's event to its
    error handler. Raises the FlowFailed ApplicationError when the event cannot be processed."""
    if not run.resumed:
        before = await _event_hooks(run, "before_event_handling", run.input.state)
        run.input = run.input.model_copy(update={"state": before})
        run.state = before
    try:
        result = await body(run)
    except ApplicationError as err:
        partial = _partial(err)
        if partial is None:
            raise
        routed = await _route_error(run, partial)
        if routed is None:
            await compensate(run, run.saga, partial)  # a saga's undo steps, if any
            await _event_hooks(run, "after_event_handling", partial.state, partial.error)
            if partial.status == "compensated":  # its message says so too
                raise ApplicationError(partial.error or err.message, partial, type="FlowFailed",
                                       non_retryable=True) from err  # fmt: skip
            raise
        result = routed
    result.state = await _event_hooks(run, "after_event_handling", result.state, result.error)
    return result


def _partial(err: ApplicationError) -> FlowResult | None:
    if err.type != "FlowFailed" or not err.details or not isinstance(err.details[0], FlowResult):
        return None
    return err.details[0]


def error_kind(config: FlowConfig, failed: AgentResult | None) -> str:
    """How an agent failed, as ``[error_routing]`` sorts it: validation, timeout, fatal,
    rejected (an approval) or default (retries ran out, or the flow itself failed, e.g. a route
    loop)."""
    kind = failed.error_type if failed else None
    if kind is None:
        return "default"
    if kind == "AgentOutputError" or kind.endswith("ValidationError"):
        return "validation"
    if kind in ("Timeout", "DeadlinePassed", "ApprovalTimedOut"):
        return "timeout"
    if kind == "ApprovalRejected":  # a person (or on_timeout = "reject") said no
        return "rejected"
    retry = (
        config.retry_settings(failed.agent) if failed and failed.agent in config.agents else None
    )
    if kind in ("FatalError", "AgentConfigError") or (retry and kind in retry.non_retryable_errors):
        return "fatal"
    return "default"


async def _route_error(run: FlowRun, partial: FlowResult) -> FlowResult | None:
    """The event handled by its ``[error_routing]`` agent, or None (no handler, a hook
    rejection, or the handler failed too: the caller dead-letters or fails the run)."""
    if partial.rejected_by or partial.hook_failed:
        return None
    failed = next((r for r in partial.results if r.status == "failed" and r.topic is None), None)
    if failed is not None and failed.rejected_by:
        partial.rejected_by = failed.rejected_by
        return None
    kind = error_kind(run.config, failed)
    handler = run.config.error_routing.handler_for(kind)
    if handler is None:
        return None
    original = run.input.event.model_copy(update={"data": run.input.state.data})
    request = State(
        data={
            "original_event": original.model_dump(mode="json"),
            "failed_agent": failed.agent if failed else "",
            "error_message": partial.error or "",
            "error_type": kind,
            "exception_type": failed.error_type if failed else "",
            "attempts": failed.attempt if failed else 0,
            "state": partial.state.data,
        },
        meta=dict(partial.state.meta),
        context=dict(partial.state.context),
    )
    workflow.logger.info("event %s goes to error handler %s (%s)", run.input.event.id, handler,
                         kind)  # fmt: skip
    run.results = list(partial.results)
    try:
        output = await run.bus.settle(run.step(handler, request, failed.agent if failed else ""))
    except StepFailed as also:
        run.results.append(also.result)
        partial.results = list(run.results)
        partial.error = (
            f"{partial.error}; then error handler {handler!r} failed too: {also.result.error}"
        )
        return None
    handled = run.finish(output, handled_by=handler)
    handled.status, handled.error = "handled", partial.error
    return handled


async def _event_hooks(run: FlowRun, point: str, state: State, error: str | None = None) -> State:
    """Run an event hook point's callbacks in the ``run_hooks`` activity (none: no activity).
    A rejection or a hook that keeps failing fails the run, without error routing."""
    callbacks = run.config.hooks.at(point)
    if not callbacks:
        return state
    request = HookInput(hook=point, callbacks=callbacks, event=run.input.event, state=state,
                        flow=run.config.name, error=error)  # fmt: skip
    orchestration = run.config.orchestration
    policy = retry_policy(orchestration.retry, 1 + orchestration.retry_attempts)
    run.calls += 1
    activity_id = f"{run.activity_prefix}{run.calls}-hooks-{point}"
    timeout = timedelta(seconds=HOOK_TIMEOUT_SECONDS)
    try:
        if run.config.orchestration.local_agents:
            output: HookOutput = await workflow.execute_local_activity(
                RUN_HOOKS, request, activity_id=activity_id, result_type=HookOutput,
                start_to_close_timeout=timeout, retry_policy=policy, summary=point,
            )  # fmt: skip
        else:
            output = await workflow.execute_activity(
                RUN_HOOKS, request, activity_id=activity_id, result_type=HookOutput,
                start_to_close_timeout=timeout, retry_policy=policy, summary=point,
            )  # fmt: skip
    except FailureError as err:
        failure = err.cause or err
        run.state = state
        run.fail(f"{point} hooks failed: {failure}", hook_failed=point)
    if output.rejected_by:
        run.state = output.state
        run.fail(
            f"rejected by {point} hook {output.rejected_by}: {output.reason}",
            rejected_by=output.rejected_by,
        )
    return output.state


async def run_streamed(stream: WorkflowStream, flow_input: FlowInput, body: ModeBody) -> FlowResult:
    """A mode workflow's run: the event through ``body``, told on the stream as it goes."""
    published = RunStream(stream)
    run = FlowRun(flow_input, stream=published)
    try:
        result = await handle_event(run, body)
    except ApplicationError as err:
        run.progress.finished("failed", err.message)
        await published.close()
        raise
    except asyncio.CancelledError:
        published.release()  # the cancelled run ends in this task: no waiting now
        raise
    run.progress.finished(result.status, result.error)
    await published.close()
    return result
