"""The workflow sandbox runner agentflow workers use: Temporal's, minus a per-payload detour.

To encode or decode each payload of a workflow task, the SDK asks the workflow instance for
the payload's serialization context (which activity or child the payload belongs to). Under
the stock sandbox runner every such question ``exec()``s a code string inside the sandbox with
its importer applied (swapping ``sys.modules`` and ``builtins.__import__`` and back): 25 % of
the CPU of a local agent step in our profile (bench/RESULTS.md). The answer is the SDK's own
bookkeeping about pending commands, not workflow code, so this runner asks the sandboxed
instance directly. Workflow code itself still runs only inside the sandbox, with the same
restrictions (tests/test_sandbox.py checks both).

Its restrictions also pass ``beartype`` through. A library the MCP clients import
(``key_value.aio``) installs beartype's import hook for every file-based import, and inside the
sandbox that hook re-imported beartype's ~260 modules for each new workflow instance: every run
on a worker that had used MCP tools cost ~0.8 s of CPU more (tests/test_sandbox.py measures it).

It subclasses a private SDK class. If the installed SDK no longer has the shape this relies on,
``faster_sandbox`` hands back the stock runner unchanged and workers are merely slower.
"""

from __future__ import annotations

import inspect
from typing import Any

from temporalio.worker import (
    Replayer,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

try:
    from temporalio.worker.workflow_sandbox._runner import _Instance
except ImportError:  # pragma: no cover - only on an SDK that moved it
    _Instance = None  # type: ignore[assignment,misc]

# Set by the stock _Instance once the workflow class is imported inside the sandbox.
_IN_SANDBOX = "__temporal_in_sandbox"
SUPPORTED = _Instance is not None and hasattr(_Instance, "get_serialization_context")


if SUPPORTED:

    class _DirectContextInstance(_Instance):
        """A sandboxed instance answering context questions without re-entering the sandbox."""

        def _in_sandbox(self) -> Any:
            return self.globals_and_locals[_IN_SANDBOX]

        def get_serialization_context(self, command_info: Any) -> Any:
            return self._in_sandbox().get_serialization_context(command_info)

        def get_external_store_context(self, command_info: Any) -> Any:
            return self._in_sandbox().get_external_store_context(command_info)


# Modules the workflow sandbox takes from the worker instead of importing anew per run.
PASSTHROUGH = ("beartype",)
RESTRICTIONS = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)


class AgentflowSandboxRunner(SandboxedWorkflowRunner):
    """``SandboxedWorkflowRunner`` whose instances look up serialization contexts directly."""

    def __init__(self, restrictions: SandboxRestrictions = RESTRICTIONS) -> None:
        super().__init__(restrictions=restrictions)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        if not SUPPORTED:  # built directly on an SDK without the private class: the stock way
            return super().create_instance(det)
        return _DirectContextInstance(det, self.runner_class, self.restrictions)


def _sdk_default_runners() -> tuple[object, ...]:
    # The very objects Worker and Replayer use when no runner is passed: a runner that is one
    # of them was not chosen by the application.
    return tuple(
        inspect.signature(cls).parameters["workflow_runner"].default for cls in (Worker, Replayer)
    )


_SDK_DEFAULTS = _sdk_default_runners()


def faster_sandbox(existing: WorkflowRunner | None) -> WorkflowRunner:
    """AgentflowSandboxRunner in place of the SDK's default runner.

    A runner the application passed itself (even a stock ``SandboxedWorkflowRunner()``) is kept
    as is; so is the default when this SDK version is not supported.
    """
    if existing is not None and not any(existing is default for default in _SDK_DEFAULTS):
        return existing
    if not SUPPORTED:
        return existing or SandboxedWorkflowRunner(restrictions=RESTRICTIONS)
    return AgentflowSandboxRunner()
