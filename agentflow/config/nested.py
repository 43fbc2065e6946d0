"""Flows inside flows: loading the flow file of every agent with ``flow = "path.toml"``.

The file is found relative to the file that names it, loaded (and validated) like any flow
file, and kept in the parent's ``FlowConfig.nested`` under the agent's name. So the child's
config travels in the parent's snapshot: a run is pinned to the child flow as it was when the
run started, and editing the child file changes only new runs.

Two things can make such a tree endless or huge, and both are caught here, at load time: a
cycle of flow files (``a.toml → b.toml → a.toml``, named in the message) and nesting deeper
than the root file's ``[orchestration] max_flow_depth``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from agentflow.config.flow import FlowConfig
from agentflow.errors import ConfigError
from agentflow.limits import MAX_SNAPSHOT_BYTES

ARROW = " → "


@dataclasses.dataclass(frozen=True)
class Nesting:
    """Where a flow file sits in the tree being loaded: the files from the outermost one down
    to it (to catch a cycle) and their names as messages show them, its depth (the outermost
    file is 0) and the outermost file's depth limit."""

    files: tuple[Path, ...] = ()
    shown: tuple[str, ...] = ()
    depth: int = 0
    limit: int | None = None  # None: this file is the outermost one, its own limit applies

    def entering(self, file: Path, source: str) -> Nesting:
        """This nesting with ``file`` (shown as ``source``) as the current flow file."""
        return dataclasses.replace(
            self, files=(*self.files, file.resolve()), shown=(*self.shown, source)
        )


def load_nested(
    config: FlowConfig,
    *,
    source: str,
    base_dir: Path | None,
    check_handlers: bool,
    nesting: Nesting,
    load: Callable[..., FlowConfig],
) -> FlowConfig:
    """``config`` with the flow of each enabled agent that names one loaded into ``nested``.

    Raises ConfigError naming the file, the agent's key and what is wrong: a missing file, a
    cycle (with the chain of files), nesting too deep, or the child file's own problems.
    ``load`` loads a child file (the loader's ``load_config``, which calls this in turn).
    """
    if config.nested:
        raise ConfigError(
            f"{source}: nested: unknown key; agentflow fills it from agents.*.flow, so "
            'name each nested flow file with flow = "path.toml" on its agent'
        )
    limit = config.orchestration.max_flow_depth if nesting.limit is None else nesting.limit
    directory = base_dir if base_dir is not None else Path()
    for name in config.enabled_agents():
        flow = config.agents[name].flow
        if flow is None:
            continue
        key = f"{source}: agents.{name}.flow"
        file = directory / flow
        chain = ARROW.join((*(nesting.shown or (source,)), str(file)))
        if file.resolve() in nesting.files:
            raise ConfigError(f"{key}: flow files form a cycle: {chain}; a flow cannot run itself")
        if nesting.depth + 1 > limit:
            raise ConfigError(
                f"{key}: flows nest {nesting.depth + 1} levels deep ({chain}); at most "
                f"orchestration.max_flow_depth = {limit} (set in the outermost file)"
            )
        if not file.is_file():
            raise ConfigError(
                f"{key}: flow file {str(file)!r} not found (a path relative to the directory "
                f"of {source})"
            )
        inner = dataclasses.replace(nesting, depth=nesting.depth + 1, limit=limit)
        config.nested[name] = load(file, check_handlers=check_handlers, nesting=inner)
    if config.nested and (size := len(config.model_dump_json())) > MAX_SNAPSHOT_BYTES:
        raise ConfigError(
            f"{source}: the flow's settings with its nested flows are {size / 1024:.0f} KB as "
            f"JSON; at most {MAX_SNAPSHOT_BYTES // 1024} KB, since they travel in every "
            "workflow input (shorten system_prompt and descriptions, or nest fewer flows)"
        )
    return config


def child_dir(base_dir: Path | None, flow: str) -> Path | None:
    """The directory of a nested flow file named ``flow`` by a file in ``base_dir``: where its
    handlers are imported from (None when the parent's directory is unknown)."""
    return None if base_dir is None else (base_dir / flow).parent
