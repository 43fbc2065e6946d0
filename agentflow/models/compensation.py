"""What the ``run_compensation`` activity gets and returns (a saga's undo step).

A compensation is an agent's ``compensate = "module:function"`` (or one registered in code):
called as ``fn(event, state)``, sync or async, with the run's event and the state that agent
produced, when the run fails for good after the agent completed (workflows/_compensate.py).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from agentflow.models.flow import Event, State


class CompensationInput(BaseModel):
    """Which agent's compensation to run, its import path (or code marker), and its inputs."""

    agent: str
    path: str
    event: Event
    state: State  # the state the agent produced (its output)
    flow: str = ""


class CompensationOutput(BaseModel):
    """A compensation that completed: on which attempt, and when."""

    attempt: int
    started_at: datetime
    ended_at: datetime
