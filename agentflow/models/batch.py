"""Input and output of the ``run_local_agents`` activity: a run of consecutive local agents of a
sequence, called one after another inside one local activity (workflows/_batch.py says why)."""

from __future__ import annotations

from pydantic import BaseModel

from agentflow.config import AgentConfig, LLMConfig
from agentflow.models.flow import AgentHooks, AgentOutput, Event, State


class BatchCall(BaseModel):
    """One agent of a batch, and the activity id it would have had on its own (trace, bus)."""

    agent: str
    spec: AgentConfig
    activity_id: str


class BatchInput(BaseModel):
    calls: list[BatchCall]
    event: Event  # its source_agent is the first call's; each next call gets the previous agent
    state: State  # the first agent's input; each next agent gets the previous one's output
    flow: str = ""
    llm: LLMConfig | None = None
    hooks: AgentHooks | None = None
    # The first agent's attempt when the activity's own attempt is 1: it failed inside an
    # earlier batch, and this batch carries on with its retries.
    first_attempt: int = 1
    # Take no further agent once the batch has run this long, so that the worker's workflow
    # task heartbeat can record the results so far (the crash window of local agents).
    budget_seconds: float = 1.0


class BatchFailure(BaseModel):
    """How a later agent of a batch failed (the first agent's failure fails the activity)."""

    agent: str
    message: str
    type: str
    non_retryable: bool = False
    attempt: int = 1
    rejected_by: str | None = None


class BatchOutput(BaseModel):
    """The agents that completed, in order, and the failure that stopped the batch, if any.
    Fewer outputs and no failure: the budget ran out; the workflow goes on with the rest."""

    agents: list[str]  # the agents of ``outputs`` (a local activity's input is not in history)
    activity_ids: list[str]
    outputs: list[AgentOutput]
    failure: BatchFailure | None = None
    # The next agent asked for a person's approval (ApprovalRequired): the workflow runs it
    # on its own, where approvals are handled; what it did here is not used.
    run_alone: bool = False
