"""Compensation (a saga): when a sequential or mixed run fails for good, and ``[error_routing]``
did not take the event, the ``compensate`` functions of the agents that completed run in
reverse order of completion, one at a time, each as its own ``run_compensation`` activity with
its agent's retry policy and timeout.

A compensation that fails for good does not stop the others: it is dead-lettered (reason
"compensation failed", an ``AgentflowDeadLetter`` workflow like a session's letters; a redrive
of it is refused, agentflow/client/dead_letters.py) and the next one runs. The run still ends
with the FlowFailed error; its partial result says status "compensated" and carries what each
compensation did.

Nothing is scheduled for a flow whose agents have no ``compensate``, so flows without one keep
the commands (and the golden histories) they had. Deterministic code only.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig
    from agentflow.models.compensation import CompensationInput, CompensationOutput
    from agentflow.models.flow import Compensation, FlowResult, State
    from agentflow.models.session import DeadLetter
    from agentflow.names import RUN_COMPENSATION, dead_letter_workflow_id
    from agentflow.workflows._calls import retry_policy
    from agentflow.workflows._failures import failed_result
    from agentflow.workflows._letters import start_letter
    from agentflow.workflows._run import Run

# The modes whose runs are compensated: the ones with an order of completed steps to undo.
COMPENSATED_MODES = ("sequential", "mixed")


class Saga:
    """The agents of one run that completed and have a ``compensate``, in completion order,
    with the state each produced."""

    def __init__(self) -> None:
        self.completed: list[tuple[str, State]] = []

    def done(self, config: FlowConfig, agent: str, output: State) -> None:
        spec = config.agents.get(agent)
        if spec is not None and spec.compensate and config.mode in COMPENSATED_MODES:
            self.completed.append((agent, output))


async def compensate(run: Run, saga: Saga, partial: FlowResult) -> None:
    """Run the completed agents' compensations, last completed first; mark ``partial``
    (the failed run's result) "compensated" with their results. Nothing to undo: no-op."""
    if not saga.completed or run.config.mode not in COMPENSATED_MODES:
        return
    workflow.logger.info("run failed: compensating %s",
                         ", ".join(agent for agent, _ in reversed(saga.completed)))  # fmt: skip
    results: list[Compensation] = []
    for agent, state in reversed(saga.completed):
        results.append(await _one(run, agent, state))
    saga.completed.clear()
    partial.status, partial.compensations = "compensated", results
    undone = [result.agent for result in results if result.status == "completed"]
    failed = [result.agent for result in results if result.status == "failed"]
    told = f"compensated {', '.join(map(repr, undone))}" if undone else "compensated none"
    if failed:
        told += f"; the compensation of {', '.join(map(repr, failed))} failed (dead-lettered)"
    partial.error = f"{partial.error}; {told}"


async def _one(run: Run, agent: str, state: State) -> Compensation:
    """One agent's compensation; a failure for good is dead-lettered, not raised."""
    config, event = run.config, run.input.event
    spec = config.agents[agent]
    policy = retry_policy(config.retry_settings(agent), config.max_attempts(agent))
    run.calls += 1
    activity_id = f"{run.activity_prefix}{run.calls}-compensate-{agent}"
    request = CompensationInput(agent=agent, path=spec.compensate or "", event=event,
                                state=state, flow=config.name)  # fmt: skip
    started = workflow.now()
    run.progress.note("compensating", agent, activity_id=activity_id)
    try:
        output: CompensationOutput = await workflow.execute_activity(
            RUN_COMPENSATION, request, activity_id=activity_id, result_type=CompensationOutput,
            start_to_close_timeout=timedelta(seconds=spec.timeout_seconds), retry_policy=policy,
            summary=f"compensate {agent}",
        )  # fmt: skip
    except FailureError as err:
        failed = failed_result(agent, err, policy, started, None)
        letter_id = await _dead_letter(run, agent, state, failed.error, failed.error_type,
                                       failed.attempt)  # fmt: skip
        run.progress.note("compensation_failed", agent, dead_letter_id=letter_id)
        return Compensation(
            agent=agent, status="failed", attempt=failed.attempt, started_at=started,
            ended_at=failed.ended_at, duration_ms=failed.duration_ms, error=failed.error,
            error_type=failed.error_type, dead_letter_id=letter_id,
        )  # fmt: skip
    run.progress.note("compensated", agent, attempt=output.attempt)
    return Compensation(
        agent=agent, status="completed", attempt=output.attempt, started_at=output.started_at,
        ended_at=output.ended_at,
        duration_ms=(output.ended_at - output.started_at).total_seconds() * 1000,
    )  # fmt: skip


async def _dead_letter(
    run: Run, agent: str, state: State, error: str | None, error_type: str | None, attempts: int
) -> str:
    """The failed compensation as a dead letter of the run's session (a plain run: of its
    workflow id), its id derived from the event's and the agent's."""
    event, flow = run.input.event, run.config.name
    session = event.session_id or workflow.info().workflow_id
    letter = DeadLetter(
        id=dead_letter_workflow_id(flow, session, f"{event.id}:compensate:{agent}"),
        flow=flow, session_id=session, reason="compensation failed", event=event,
        failed_agent=agent, error=f"compensation of agent {agent!r} failed: {error}",
        error_type=error_type, attempts=attempts, state=state, emitted_at=event.timestamp,
        dead_lettered_at=workflow.now(),
    )  # fmt: skip
    letter_id = await start_letter(letter, run.config)
    workflow.logger.warning("compensation of %s dead-lettered as %s", agent, letter_id)
    return letter_id
