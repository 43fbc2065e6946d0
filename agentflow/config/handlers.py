"""Handler paths (``handler = "package.module:function"``, ``[hooks]`` callbacks, an LLM
agent's tools and output model): importing them, and the one-line reason when one does not
import. The loader checks every path of a flow file with these (``check_handlers``); the
worker's registry (``agentflow.activities.registry``) imports them to serve them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentflow.config.flow import FlowConfig
from agentflow.errors import ConfigError
from agentflow.limits import shorten

Handler = Callable[..., Any]


def import_handler(path: str, base_dir: Path | None = None) -> Handler:
    """Import ``package.module:function``; the config file's directory is searched first."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"handler {path!r} must look like 'package.module:function'")
    if base_dir is not None:
        directory = str(base_dir.resolve())
        if directory not in sys.path:
            sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    # Any import-time error of user code is a config problem; SystemExit too, or a module that
    # calls sys.exit(3) at import makes `agentflow validate` exit 3 without a word.
    # KeyboardInterrupt still stops the command.
    except (Exception, SystemExit) as err:
        raise ConfigError(
            f"cannot import module {module_name!r} for handler {path!r}: {import_failure(err)}"
        ) from err
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"{path!r} is not callable (it is a {type(target).__name__})")
    return target  # type: ignore[no-any-return]


def import_failure(err: BaseException) -> str:
    if isinstance(err, SystemExit):
        return f"it called sys.exit({err.code!r}) while being imported"
    # One line, and not a whole 5 MB message: it is printed and may be recorded.
    text = " ".join(str(err).split())
    return shorten(f"{type(err).__name__}: {text}", 500)


def llm_paths(config: FlowConfig) -> list[str]:
    """The import paths LLM agents use: their ``tools`` and ``output_schema = "module:Model"``."""
    paths: list[str] = []
    for agent in config.agents.values():
        paths += agent.tools
        schema = agent.output_schema
        if isinstance(schema, str) and not schema.lstrip().startswith("{"):
            paths.append(schema.strip())
    return paths


def tool_problem(path: str, base_dir: Path | None) -> str | None:
    """Why ``path`` cannot be an LLM tool (does not import, or has no usable signature)."""
    try:
        function = import_handler(path, base_dir)
    except ConfigError as err:
        return str(err).replace("handler", "tool", 1)
    from pydantic_ai import Tool  # only for flows with tools

    try:
        Tool(function, takes_ctx=False).tool_def  # noqa: B018 - builds the schema, or raises
    except Exception as err:
        return f"tool {path!r} cannot be described to a model: {import_failure(err)}"
    return None


def output_model_problem(path: str, base_dir: Path | None) -> str | None:
    """Why ``path`` cannot be an ``output_schema`` model (a pydantic BaseModel subclass)."""
    import pydantic

    try:
        model = import_handler(path, base_dir)
    except ConfigError as err:
        return str(err).replace("handler", "output_schema", 1)
    if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
        return f"{path!r} is not a pydantic model (a BaseModel subclass)"
    return None


def llm_import_problems(config: FlowConfig, agent: str, base_dir: Path | None) -> list[str]:
    """An LLM agent's tools and output model that cannot be used, one line each."""
    spec = config.agents[agent]
    problems = [
        f"agents.{agent}.tools[{index}]: {problem}"
        for index, path in enumerate(spec.tools)
        if (problem := tool_problem(path, base_dir))
    ]
    schema = spec.output_schema
    model_path = schema.strip() if isinstance(schema, str) and "{" not in schema else None
    if model_path and (problem := output_model_problem(model_path, base_dir)):
        problems.append(f"agents.{agent}.output_schema: {problem}")
    return problems


def handler_problem(path: str, base_dir: Path | None) -> str | None:
    """Why ``path`` cannot be used as a handler, or None when it can."""
    try:
        import_handler(path, base_dir)
    except ConfigError as err:
        return str(err)
    return None


def compensation_problems(config: FlowConfig, agent: str, base_dir: Path | None) -> list[str]:
    """An agent's ``compensate`` path that does not import or names nothing callable."""
    path = config.agents[agent].compensate
    if path is not None and config.mode not in ("sequential", "mixed"):
        return [f"agents.{agent}.compensate: compensations run in sequential and mixed mode "
                f"only, and this flow is {config.mode}; remove it"]  # fmt: skip
    if path is None or path.startswith("<code>:"):  # registered in code: checked there
        return []
    problem = handler_problem(path, base_dir)
    if problem is None:
        return []
    return [f"agents.{agent}.compensate: {problem.replace('handler', 'compensation', 1)}"]
