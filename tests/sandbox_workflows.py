"""Workflows that break the sandbox's rules on purpose (tests/test_sandbox.py)."""

from __future__ import annotations

import datetime

from temporalio import workflow


@workflow.defn(name="ReadsWallClock")
class ReadsWallClock:
    """Reads the wall clock in workflow code: the sandbox must refuse."""

    @workflow.run
    async def run(self) -> str:
        return datetime.datetime.now().isoformat()
