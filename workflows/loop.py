"""Loop mode: ``loop_agent`` repeats on its own output until ``loop_complete`` or
``max_iterations``. History stays bounded: the run continues-as-new every few hundred
iterations, carrying the state and a window of recent results.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream

    from agentflow.models.flow import FlowInput, FlowResult, LoopProgress, State
    from agentflow.names import LOOP_WORKFLOW
    from agentflow.workflows._approval import ApprovalHandlers
    from agentflow.workflows._event import run_streamed
    from agentflow.workflows._failures import StepFailed
    from agentflow.workflows._steps import FlowRun

# Iterations per run before continue-as-new: about 6 history events each, so ~3,000 events.
ITERATIONS_PER_RUN = 500
# Results kept in the final FlowResult; the full record is the history of each run.
RECENT_RESULTS = 100


@workflow.defn(name=LOOP_WORKFLOW)
class LoopFlow(ApprovalHandlers):  # the approval Update and query
    @workflow.init
    def __init__(self, flow_input: FlowInput) -> None:
        self.stream = WorkflowStream(flow_input.stream)  # live items (workflows/_stream.py)

    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        return await run_streamed(self.stream, flow_input, orchestrate)


async def orchestrate(run: FlowRun) -> FlowResult:
    progress = run.input.loop or LoopProgress()
    run.results = list(progress.recent_results)
    state, reason = await run.bus.settle(_iterate(run, progress))
    run.results = run.results[-RECENT_RESULTS:]
    return run.finish(state, iterations=progress.iterations, stop_reason=reason)


async def _iterate(run: FlowRun, progress: LoopProgress) -> tuple[State, str]:
    orch = run.config.orchestration
    agent = orch.loop_agent or ""
    state = run.input.state
    iterations_here = 0
    while progress.iterations < orch.max_iterations:
        if iterations_here >= ITERATIONS_PER_RUN or workflow.info().is_continue_as_new_suggested():
            # Deliveries still running would be lost with this run: wait for them.
            await run.bus.drain(iterations=progress.iterations)
            progress.recent_results = run.results[-RECENT_RESULTS:]
            progress.usage = run.usage or None  # LLM usage so far, for the run's total
            progress.runs += 1
            await run.continue_as_new(
                run.input.model_copy(update={"state": state, "loop": progress})
            )
        try:
            state = await run.step(agent, state, agent if progress.iterations else "")
        except StepFailed as failed:
            run.fail(
                f"agent {agent!r} (iteration {progress.iterations + 1}) failed: "
                f"{failed.result.error}",
                failed.result,
                iterations=progress.iterations,
            )
        progress.iterations += 1
        iterations_here += 1
        if state.data.get("loop_complete") is True:
            return state, "loop_complete"
    return state, "max_iterations"
