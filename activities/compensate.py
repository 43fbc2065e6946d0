"""The ``run_compensation`` activity: one completed agent's ``compensate`` function, run when
its flow failed for good (workflows/_compensate.py schedules it, one at a time, in reverse
order of completion).

A compensation is ``fn(event, state)``, sync (in the worker's thread pool) or async, given the
run's event and the state its agent produced; what it returns is ignored. Failures map as an
agent's do (activities/agent_failures.py): ``FatalError`` is not retried, anything else is
retried with the agent's retry policy; one that fails for good is dead-lettered by the workflow.
"""

from __future__ import annotations

from concurrent.futures import Executor
from datetime import datetime, timezone

from temporalio import activity
from temporalio.exceptions import ApplicationError

from agentflow.activities.agent_failures import as_failure, short_failures
from agentflow.activities.emit import emitting
from agentflow.activities.hooks import call
from agentflow.activities.registry import AgentRegistry
from agentflow.config.registered import is_code
from agentflow.models.compensation import CompensationInput, CompensationOutput
from agentflow.names import RUN_COMPENSATION


class CompensationActivities:
    """Runs compensations with the worker's registry (the paths its flow files name) and
    thread pool."""

    def __init__(self, registry: AgentRegistry, executor: Executor | None = None) -> None:
        self._registry = registry
        self._executor = executor

    @activity.defn(name=RUN_COMPENSATION)
    async def run_compensation(self, request: CompensationInput) -> CompensationOutput:
        started_at = datetime.now(timezone.utc)
        attempt = activity.info().attempt
        function = self._registry.get(request.path)
        if function is None:
            where = (
                "registered in code, but not on this worker: start the worker with --agents "
                "MODULE (or [agent_flow] agent_modules)"
                if is_code(request.path)
                else "not registered on this worker; start the worker with the agentflow.toml "
                "that names it (--config)"
            )
            raise ApplicationError(
                f"compensation {request.path!r} of agent {request.agent!r} is {where}",
                {"attempt": attempt, "agent": request.agent},
                type="AgentConfigError",
                non_retryable=True,
            )
        async with short_failures(), emitting(self._registry, request.flow, request.event):
            try:
                await call(function, self._executor, request.event, request.state.clone())
            except Exception as err:
                failure = as_failure(err, attempt, request.agent)
                if failure is err:
                    raise
                raise failure from err
        return CompensationOutput(
            attempt=attempt, started_at=started_at, ended_at=datetime.now(timezone.utc)
        )
