"""The floor under an event into a live session (W6 floor): a workflow that runs nothing and
answers an Update at once.

Kept in a module of its own, like bench/raw_session.py: the sandbox re-imports a workflow's
module for every new run.
"""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="BareUpdate")
class BareUpdate:
    """Lives until cancelled; ``ping`` returns its argument in the workflow task it arrives in."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update(name="ping")
    def ping(self, value: str) -> str:
        return value
