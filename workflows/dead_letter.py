"""A dead letter: one workflow per event that could not be processed.

Why a workflow each: it is durable without a store of our own, it shows in the Temporal UI
(workflow type ``AgentflowDeadLetter``, filterable by the flow and session search attributes),
and Updates make "redrive once" atomic. It stays open until it is redriven or purged, waiting
on a condition (no timer, no worker slot), and then completes with what became of it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models.session import DeadLetter, DeadLetterView, Redrive
    from agentflow.names import DEAD_LETTER_WORKFLOW, LETTER_QUERY, PURGE_UPDATE, REDRIVEN_UPDATE


@workflow.defn(name=DEAD_LETTER_WORKFLOW)
class DeadLetterWorkflow:
    @workflow.init
    def __init__(self, letter: DeadLetter) -> None:
        self.view = DeadLetterView(letter=letter)

    @workflow.run
    async def run(self, letter: DeadLetter) -> DeadLetterView:
        workflow.set_current_details(_details(self.view))
        await workflow.wait_condition(lambda: self.view.status != "open")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.view

    @workflow.query(name=LETTER_QUERY)
    def letter(self) -> DeadLetterView:
        return self.view

    @workflow.update(name=REDRIVEN_UPDATE)
    def redriven(self, redrive: Redrive) -> DeadLetterView:
        """The letter's event was emitted again as ``redrive.event_id``."""
        self.view.status = "redriven"
        self.view.redriven_as = redrive.event_id
        self.view.decided_at = workflow.now()
        self.view.decided_by = redrive.by or None
        return self.view

    @workflow.update(name=PURGE_UPDATE)
    def purge(self, by: str) -> DeadLetterView:
        self.view.status = "purged"
        self.view.decided_at = workflow.now()
        self.view.decided_by = by or None
        return self.view

    @redriven.validator
    def _redrive_once(self, redrive: Redrive) -> None:
        self._still_open()
        if self.view.letter.event is None:
            raise ValueError(
                "this event could not be read, so it cannot be emitted again; fix it and emit "
                "it as a new event"
            )

    @purge.validator
    def _purge_once(self, by: str) -> None:
        self._still_open()

    def _still_open(self) -> None:
        # A validator's exception rejects the update: nothing is written to history.
        if self.view.status != "open":
            when = self.view.decided_at.isoformat() if self.view.decided_at else "earlier"
            raise ValueError(f"dead letter {self.view.letter.id} was {self.view.status} at {when}")


def _details(view: DeadLetterView) -> str:
    letter = view.letter
    lines = [f"**dead letter** of session `{letter.session_id}` ({letter.flow}): {letter.reason}"]
    if letter.failed_agent:
        lines.append(f"Agent `{letter.failed_agent}` after {letter.attempts} attempt(s)")
    if letter.error:
        lines.append(f"Error: {letter.error[:500]}")
    return "\n\n".join(lines)
