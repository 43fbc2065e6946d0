"""Each mode's body by name, for the session workflow, which runs events of any mode.

The mode workflows themselves are loaded lazily (``workflows/__init__.py``); a session imports
all five bodies once per run, which it amortises over many events.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.workflows import collaborative, loop, mixed, route, sequential
    from agentflow.workflows._event import ModeBody

MODE_BODIES: dict[str, ModeBody] = {
    "route": route.orchestrate,
    "sequential": sequential.orchestrate,
    "collaborative": collaborative.orchestrate,
    "loop": loop.orchestrate,
    "mixed": mixed.orchestrate,
}
