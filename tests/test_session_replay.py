"""Sessions meet code changes: every task of a fresh session replays, and a session started on
one version of the code and continued on the next replays with ``workflow.patched`` and is
reported by ``agentflow replay`` without it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from temporalio import workflow
from temporalio.client import Client
from temporalio.plugin import SimplePlugin
from temporalio.worker import Worker

from agentflow.activities.registry import AgentRegistry
from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, FlowMeta
from agentflow.inspect.replay import replay_runs
from agentflow.models.flow import FlowInput
from agentflow.models.session import QueuedEvent, SessionState
from agentflow.names import session_workflow_id
from agentflow.worker.plugin import ALL_WORKFLOWS, AgentflowPlugin
from agentflow.workflows.session import SessionWorkflow
from tests.conftest import REPO, running_worker
from tests.session_goldens import golden_session_config


# Unsandboxed: the sandbox would re-import this test module and its fixtures.
@workflow.defn(name="AgentflowSession", sandboxed=False)
class PatchedSession(SessionWorkflow):
    """Version 2: records the last event in the memo, guarded by ``workflow.patched``."""

    @workflow.run
    async def run(self, state: SessionState) -> object:
        return await super().run(state)

    async def _run_event(self, queued: QueuedEvent, flow_input: FlowInput, resumed: bool) -> None:
        await super()._run_event(queued, flow_input, resumed)
        if workflow.patched("memo-last-event"):
            workflow.upsert_memo({"last_event": queued.event.id})


@workflow.defn(name="AgentflowSession", sandboxed=False)
class UnguardedSession(SessionWorkflow):
    """The same change without the guard: old histories no longer replay."""

    @workflow.run
    async def run(self, state: SessionState) -> object:
        return await super().run(state)

    async def _run_event(self, queued: QueuedEvent, flow_input: FlowInput, resumed: bool) -> None:
        await super()._run_event(queued, flow_input, resumed)
        workflow.upsert_memo({"last_event": queued.event.id})


def _with(session_class: type) -> list[type]:
    return [session_class if w is SessionWorkflow else w for w in ALL_WORKFLOWS]


def _swap(session_class: type) -> SimplePlugin:
    def replace(workflows: Sequence[type] | None) -> list[type]:
        return [session_class if w is SessionWorkflow else w for w in workflows or []]

    return SimplePlugin("swap-session", workflows=replace)


def _own_flow() -> FlowConfig:
    """The golden session's flow under a name of its own, so replay sees only this test."""
    config = golden_session_config()
    meta = FlowMeta(name=f"deploy-{uuid.uuid4().hex[:8]}")
    return config.model_copy(update={"agent_flow": meta})


async def test_every_task_of_a_fresh_session_replays(client: Client) -> None:
    config = _own_flow()
    async with running_worker(client, config, max_cached_workflows=0) as queue:
        runner = Runner(config, client, queue)
        for n, data in enumerate([{}, {"fail": "b"}, {"fail_retryable": "a"}, {}, {}]):
            await (await runner.emit({"n": n, **data}, session_id="fresh")).outcome()
    report = await replay_runs(client, flow=config.name)
    assert report.replayed >= 3 and report.failed == []  # two session runs and a dead letter


async def test_a_session_continues_on_patched_code_and_replay_gates_the_unguarded_change(
    client: Client,
) -> None:
    config = _own_flow()
    # Temporal evaluates a patch once per run: a run that started on the old code keeps the
    # old path to its end. The session continues as new after 2 events, so the new code's
    # events run in a run of their own, where the patch is on.
    config.sessions.events_per_run = 2
    queue = f"deploy-{uuid.uuid4().hex[:8]}"
    runner = Runner(config, client, queue)
    registry = AgentRegistry.from_configs([(config, REPO)])
    async with Worker(client, task_queue=queue, plugins=[AgentflowPlugin(registry)]):
        for n in range(2):
            await (await runner.emit({"n": n}, session_id="s", wait=True)).result()
    patched = [AgentflowPlugin(registry), _swap(PatchedSession)]
    async with Worker(client, task_queue=queue, plugins=patched):
        for n in range(2, 5):
            last = await runner.emit({"n": n}, session_id="s", wait=True)
            await last.result()
        handle = client.get_workflow_handle(session_workflow_id(config.name, "s"))
        memo = await (await handle.describe()).memo()
    assert memo == {"last_event": last.event_id}  # the new code ran

    guarded = await replay_runs(client, flow=config.name, workflows=_with(PatchedSession))
    assert (guarded.replayed, guarded.failed) == (3, [])  # the old code's run, the new ones
    unguarded = await replay_runs(client, flow=config.name, workflows=_with(UnguardedSession))
    assert unguarded.failed, "the unguarded change must be reported"
    assert {f.workflow_type for f in unguarded.failed} == {"AgentflowSession"}
    assert all("Nondeterminism" in failure.error for failure in unguarded.failed)
