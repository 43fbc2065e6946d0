"""The bus's subscription registry: one long-lived workflow that workers tell what they serve.

A worker registers each flow it serves at start (an update: answered once applied), and
``agentflow register`` before any worker does (signal-with-start: recorded with no worker); the
fan-out reads it with a query. Registrations are keyed by flow name: the newest registration
of a flow wins, with its config and task queue. History stays bounded: the run continues as
new, carrying the registrations, every ``UPDATES_PER_RUN`` registrations and forgets.
"""

from __future__ import annotations

from functools import partial

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models.bus import Registration, RegistryState
    from agentflow.names import (
        FORGET_UPDATE,
        REGISTER_SIGNAL,
        REGISTER_UPDATE,
        REGISTRY_QUERY,
        REGISTRY_WORKFLOW,
    )

UPDATES_PER_RUN = 500


@workflow.defn(name=REGISTRY_WORKFLOW)
class BusRegistryWorkflow:
    @workflow.init
    def __init__(self, state: RegistryState) -> None:
        self.state = state
        self.updates = 0

    @workflow.run
    async def run(self, state: RegistryState) -> None:
        while True:
            workflow.set_current_details(_details(self.state))
            await workflow.wait_condition(partial(self._changed_since, self.updates))
            if self.updates >= UPDATES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)

    def _changed_since(self, updates: int) -> bool:
        return self.updates != updates

    @workflow.update(name=REGISTER_UPDATE)
    def register(self, registration: Registration) -> RegistryState:
        registration.registered_at = workflow.now()
        self._record(registration)
        return self.state

    @workflow.signal(name=REGISTER_SIGNAL)
    def register_flow(self, registration: Registration) -> None:
        # A signal is recorded with no worker running (`agentflow register` before any
        # worker starts); workers use the update above, whose answer says it was applied. The
        # sender dates it, so that the registry's history alone says the same.
        if registration.registered_at is None:
            registration.registered_at = workflow.now()
        self._record(registration)

    def _record(self, registration: Registration) -> None:
        self.state.registrations[registration.flow] = registration
        self.updates += 1

    @workflow.update(name=FORGET_UPDATE)
    def forget(self, flow: str) -> RegistryState:
        self.state.registrations.pop(flow, None)
        self.updates += 1
        return self.state

    @forget.validator
    def _known(self, flow: str) -> None:
        if flow not in self.state.registrations:
            known = ", ".join(sorted(self.state.registrations)) or "none"
            raise ValueError(f"no flow {flow!r} is registered on the bus; registered: {known}")

    @workflow.query(name=REGISTRY_QUERY)
    def subscriptions(self) -> RegistryState:
        return self.state


def _details(state: RegistryState) -> str:
    lines = [f"**bus registry**: {len(state.registrations)} flow(s)"]
    for flow in sorted(state.registrations):
        entry = state.registrations[flow]
        lines.append(f"- `{flow}` on task queue `{entry.task_queue}` ({entry.worker})")
    return "\n".join(lines)
