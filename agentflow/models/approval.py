"""What an approval is made of: the record of one (waiting or decided), the decision a person
sends, and the names under which Temporal keeps them.

Shared by the workflows (``workflows/_approval.py``), the ``run_agent`` activity, the client
(``agentflow/approvals.py``) and the trace; pydantic models, carried by the data converter, so
new fields must be optional with defaults.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

# The Temporal Update that decides an approval (any client may send it, knowing only the
# workflow id), and the query that lists what waits.
# The KeywordList search attribute naming the agents that wait for approval in a run (unset
# when none wait): `agentflow pending` and the UI's filter box find waiting runs with it.
# Memo keys: the approvals waiting now (read by `agentflow pending` with no worker running),
# and the change each upsert records (the trace reads one line from each).

# What a person may write into a decision, and what a handler may attach to its request:
# both are recorded in history and shown by `agentflow pending`.
MAX_BY_CHARS = 200
MAX_COMMENT_CHARS = 2000
MAX_REASON_CHARS = 2000
MAX_APPROVAL_DATA_BYTES = 16 * 1024

# Where the agent waits: before it runs, before its output flows on, or because its handler
# asked (raised or returned ApprovalRequired).
ApprovalPoint = Literal["before", "after", "handler"]
# "timed_out": nobody decided in time and the agent's on_timeout is "fail".
ApprovalStatus = Literal["waiting", "approved", "rejected", "timed_out"]
OnTimeout = Literal["reject", "approve", "fail"]


class Approval(BaseModel):
    """One approval of one agent call: why it was asked, and who decided, when and why.

    On the agent's ``AgentResult`` (``approval``), in the run's memo while it waits, and in
    the trace. ``decided_by`` is ``"timeout"`` when the agent's ``on_timeout`` decided.
    """

    id: str  # unique in the workflow run: "3-reviewer" (the 3rd approval asked there)
    agent: str
    point: ApprovalPoint
    status: ApprovalStatus = "waiting"
    reason: str = ""  # why it was asked
    data: dict[str, Any] = Field(default_factory=dict)  # what the person is shown
    flow: str = ""
    event_id: str = ""
    session_id: str = ""
    asked_at: datetime
    timeout_at: datetime | None = None
    on_timeout: OnTimeout = "reject"
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str = ""  # an approval's comment, a rejection's reason
    timed_out: bool = False
    asks: int = 1  # the handler's requests in a row for this call, this one included

    @property
    def approved(self) -> bool:
        return self.status == "approved"


class ApprovalDecision(BaseModel):
    """The ``decide`` Update's input: approve or reject the approval that ``agent`` (an agent
    name or an approval id; None: the only one waiting) waits for."""

    approve: bool
    agent: str | None = None
    by: str = ""
    comment: str = ""


class ApprovalAsk(BaseModel):
    """A handler's ApprovalRequired as the ``run_agent`` activity returns it (not a failure)."""

    reason: str
    data: dict[str, Any] = Field(default_factory=dict)
