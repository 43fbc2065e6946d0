"""``agentflow replay``: would the workflow code as it is now break runs already in Temporal?

Sessions and long flows outlive deploys. Before new code reaches the workers, this fetches the
history of every open agentflow run (and of runs closed recently) and replays it with a
``Replayer`` configured by ``AgentflowPlugin``, as a worker is: same workflow classes, data
converter and sandbox runner. An open run whose replay fails would fail its next workflow task
on the new code; a closed one could no longer be queried (``agentflow status``). Either makes
the command exit 1, so a deploy can be gated on it.

Cost: one history fetch and one replay per run, one at a time; about 15 ms per short
sequential run (114 runs in 2 s on a 2-core machine, connecting included). Histories
are streamed, never all in memory at once.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta, timezone

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHistory,
)
from temporalio.converter import DataConverter
from temporalio.plugin import SimplePlugin
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Plugin, Replayer

from agentflow.client import visibility
from agentflow.errors import ConfigError
from agentflow.worker.plugin import AgentflowPlugin

DEFAULT_WINDOW = timedelta(hours=24)
# Longer than any namespace keeps closed runs; also keeps `now - window` a valid datetime.
MAX_WINDOW = timedelta(days=3650)
PROGRESS_EVERY = 50

_DURATION = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# Core reports a failed replay as a Rust debug dump; the workflow's own message is in here.
_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')
_RUST_ESCAPE = re.compile(r"\\(.)")
_RUST_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


class ReplayFailure(BaseModel):
    """A run that the current workflow code cannot replay."""

    workflow_id: str
    run_id: str
    workflow_type: str
    error: str


class ReplayReport(BaseModel):
    """What ``replay_runs`` checked; ``failed`` is empty when the code is safe to deploy."""

    replayed: int = 0
    open: int = 0
    closed: int = 0
    skipped: int = 0  # listed, but the history was gone (retention) before it was fetched
    failed: list[ReplayFailure] = Field(default_factory=list)

    def record(self, execution: WorkflowExecution, error: str | None) -> None:
        self.replayed += 1
        if execution.status == WorkflowExecutionStatus.RUNNING:
            self.open += 1
        else:
            self.closed += 1
        if error is not None:
            self.failed.append(
                ReplayFailure(workflow_id=execution.id, run_id=execution.run_id,
                              workflow_type=execution.workflow_type, error=error)
            )  # fmt: skip

    def summary(self) -> str:
        gone = f"; {self.skipped} skipped (history gone)" if self.skipped else ""
        return (
            f"replayed {self.replayed} runs ({self.open} open, {self.closed} closed): "
            f"{len(self.failed)} would break{gone}"
        )


def parse_duration(text: str, flag: str = "--since") -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d``: a whole positive number and one unit, nothing else."""
    found = _DURATION.fullmatch(text)
    if not found or int(found.group(1)) == 0:
        raise ConfigError(
            f"{flag}: bad duration {text!r}; use a whole number and a unit: 90s, 30m, 2h or 7d"
        )
    amount, unit = int(found.group(1)), found.group(2)
    if amount > MAX_WINDOW / timedelta(**{_UNITS[unit]: 1}):
        raise ConfigError(f"{flag}: {text} is longer than {MAX_WINDOW.days}d")
    return timedelta(**{_UNITS[unit]: amount})


def build_replayer(
    workflows: Sequence[type] | None = None, data_converter: DataConverter | None = None
) -> Replayer:
    """A Replayer set up like an agentflow worker, by the same plugin.

    ``workflows`` replaces the plugin's workflow classes (tests swap in a changed one): a
    callable plugin parameter replaces the list instead of appending to it. ``data_converter``
    is the client's, so encrypted and externally stored payloads replay as the worker read them.
    """
    plugins: list[Plugin] = [AgentflowPlugin(data_converter=data_converter)]
    if workflows is not None:
        override = list(workflows)
        plugins.append(SimplePlugin("agentflow-replay-override", workflows=lambda _: override))
    return Replayer(workflows=[], plugins=plugins, runtime=_quiet_runtime())


@functools.cache
def _quiet_runtime() -> Runtime:
    # The default runtime logs a multi-line WARN for every workflow task that fails; here a
    # failed task is the expected finding, and the report states each one in one line.
    return Runtime(telemetry=TelemetryConfig(logging=None))


async def replay_runs(
    client: Client,
    *,
    open_only: bool = False,
    since: timedelta = DEFAULT_WINDOW,
    limit: int | None = None,
    flow: str | None = None,
    workflows: Sequence[type] | None = None,
    progress: Callable[[ReplayReport], None] | None = None,
) -> ReplayReport:
    """Replay running agentflow runs (and, unless ``open_only``, those closed within ``since``).

    One broken run does not stop the others; each is reported with its first error line.
    ``progress`` is called with the report so far after every run.
    """
    closed_since = None if open_only else datetime.now(timezone.utc) - since
    query = visibility.running_or_closed_since_query(closed_since, flow)
    replayer = build_replayer(workflows, client.data_converter)
    known = _workflow_names(replayer)
    report = ReplayReport()
    # The replayer takes one history at a time and yields its result before asking for the
    # next, so the runs handed over come back in the same order.
    in_replay: deque[WorkflowExecution] = deque()

    def record(execution: WorkflowExecution, error: str | None) -> None:
        report.record(execution, error)
        if progress is not None:
            progress(report)

    async def histories() -> AsyncIterator[WorkflowHistory]:
        async for execution in _executions(client, query, limit):
            if known is not None and execution.workflow_type not in known:
                record(execution, _unknown_type(execution.workflow_type, known))
                continue
            history = await _fetch_history(client, execution)
            if history is None:
                report.skipped += 1
                continue
            in_replay.append(execution)
            yield history

    async with replayer.workflow_replay_iterator(histories()) as results:
        async for result in results:
            failure = result.replay_failure
            record(in_replay.popleft(), None if failure is None else error_line(failure))
    return report


def _workflow_names(replayer: Replayer) -> set[str] | None:
    """Workflow type names the replayer serves; None when a dynamic workflow takes any type."""
    # _Definition is exported by temporalio.workflow but private; it is where @workflow.defn
    # records the name (which may differ from the class name).
    classes = replayer.config(active_config=True).get("workflows", [])
    names = {workflow._Definition.must_from_class(cls).name for cls in classes}
    return None if None in names else {name for name in names if name is not None}


def _unknown_type(workflow_type: str, known: set[str]) -> str:
    return f"no workflow named {workflow_type!r} in this code (it has: {', '.join(sorted(known))})"


async def _executions(
    client: Client, query: str, limit: int | None
) -> AsyncIterator[WorkflowExecution]:
    try:
        async for execution in client.list_workflows(query, limit=limit):
            yield execution
    except RPCError as err:
        raise visibility.missing_attribute_error(err, client.namespace) or err from None


async def _fetch_history(client: Client, execution: WorkflowExecution) -> WorkflowHistory | None:
    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
    try:
        return await handle.fetch_history()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # deleted between listing and fetching
            return None
        raise


def error_line(err: Exception) -> str:
    """``NondeterminismError: …`` or ``workflow task failed: …``, one line."""
    text = str(err)
    found = _CORE_MESSAGE.search(text)
    if found:
        text = _RUST_ESCAPE.sub(lambda m: _RUST_ESCAPES.get(m.group(1), m.group(1)), found.group(1))
    first = next((line.strip() for line in text.splitlines() if line.strip()), "(no message)")
    if isinstance(err, workflow.NondeterminismError):
        return f"NondeterminismError: {first}"
    return f"workflow task failed: {first}"


# --- the command --------------------------------------------------------------------------
