"""The session's checkpoint: an activity that does nothing, on purpose.

Why: a session with local agents can run event after event inside one workflow task, and a
local agent's result is recorded only when that task completes. Until then, signals that
arrive are buffered by the server, and past its limit (100 by default) the server fails the
task, so the local agents of every event in it run again. Scheduling a regular activity ends
the workflow task: the results so far are recorded, buffered events are delivered, waiting
clients get their outcomes. The session does this only between queued events, after a bounded
amount of local work (workflows/session.py), so an event into an idle session pays nothing.
"""

from __future__ import annotations

from temporalio import activity

from agentflow.names import SESSION_CHECKPOINT


@activity.defn(name=SESSION_CHECKPOINT)
async def session_checkpoint() -> None:
    return None
