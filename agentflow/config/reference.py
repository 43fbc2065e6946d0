"""docs/reference/config.md, generated from the schema: every table of agentflow.toml and every
key, with its type, default, allowed values and description.

A key's description is its pydantic ``description`` if it has one; else its line in ``NOTES``
(agentflow/config/_reference_notes.py) followed by the comment written above (or beside) the
field in agentflow/config/. A table's is its model's docstring. Regenerate with
``python -m agentflow.cli.reference`` (``make docs``).
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, Union

import annotated_types
from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agentflow.config import _base
from agentflow.config._reference_notes import ALLOWED, INTERNAL, NOTES, quoted
from agentflow.config.flow import FlowConfig
from agentflow.limits import MAX_DURATION_SECONDS, MAX_ID_BYTES, MIN_DURATION_SECONDS

_SECONDS = typing.get_args(_base.Seconds)[1]
_FRACTION = typing.get_args(_base.Fraction)[1]
_QUEUE_NAME = typing.get_args(_base.TaskQueueName)[1]


def config_reference() -> str:
    """The Markdown of docs/reference/config.md."""
    tables = list(_tables(FlowConfig, (), excluded=False))
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from agentflow/config by `python -m agentflow.cli.reference`; "
        "do not edit by hand. -->",
        "",
        "Every table and key of `agentflow.toml` (the schema of AgenticGoKit's flow files).",
        "Only `[orchestration] mode` is required. A key not listed here is refused, naming its",
        "key path and the keys allowed there; so is a value of the wrong type (`\"yes\"` is",
        "not a boolean, `1.5` is not an integer). `agentflow validate` checks a file without",
        "running it. Tables marked *worker and client setting* configure the processes that",
        "read the file; the others travel in every workflow's input, a snapshot that pins a",
        "run to the config it started with.",
        "",
        *[f"- [`{_heading(path, shape)}`](#{_anchor(_heading(path, shape))})"
          for path, shape, *_ in tables],
    ]  # fmt: skip
    for path, shape, model, excluded in tables:
        heading = _heading(path, shape)
        lines += ["", f"## {heading}", ""]
        doc = _clean(inspect.getdoc(model) or "")
        if excluded:
            doc += ("\n\n" if doc else "") + "*Worker and client setting* (not in the snapshot)."
        if doc:
            lines += [doc, ""]
        lines += ["| key | type | default | allowed | description |"]
        lines += ["| --- | --- | --- | --- | --- |"]
        lines += [_row(model, ".".join(path), name, field) for name, field in _fields(model)]
    return "\n".join(lines) + "\n"


def _heading(path: tuple[str, ...], shape: str) -> str:
    dotted = ".".join(path)
    return f"[[{dotted}]]" if shape == "list" else f"[{dotted}]"


def _fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    for name, field in model.model_fields.items():
        if not (model is FlowConfig and name in INTERNAL):
            yield name, field


def _tables(
    model: type[BaseModel], path: tuple[str, ...], *, excluded: bool
) -> Iterator[tuple[tuple[str, ...], str, type[BaseModel], bool]]:
    """Each table under ``model``: its key path, shape, model, and whether it is a worker and
    client setting (excluded from the snapshot)."""
    for name, field in _fields(model):
        inner, shape = _table_of(field.annotation)
        if inner is None:
            continue
        sub = (*path, name, "NAME") if shape == "dict" else (*path, name)
        hidden = excluded or bool(field.exclude)
        yield sub, shape, inner, hidden
        yield from _tables(inner, sub, excluded=hidden)


def _table_of(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model a field holds as a table, and how: one table, one per name, or a list."""
    annotation = _strip_none(annotation)
    args = typing.get_args(annotation)
    if _is_model(annotation):
        return annotation, "table"
    if typing.get_origin(annotation) is dict and _is_model(args[-1]):
        return args[-1], "dict"
    if typing.get_origin(annotation) is list and _is_model(args[0]):
        return args[0], "list"
    return None, ""


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _strip_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _row(model: type[BaseModel], table: str, name: str, field: FieldInfo) -> str:
    metadata = list(field.metadata)
    kind = _type_name(field.annotation, metadata)
    key = f"{table}.{name}"
    allowed = [text for text in (_bounds(metadata), ALLOWED.get(key)) if text]
    alias = field.validation_alias
    others = [str(c) for c in alias.choices if c != name] if isinstance(alias, AliasChoices) else []
    if others:
        allowed.append("also spelled " + ", ".join(f"`{other}`" for other in others))
    note = NOTES.get(key) or NOTES.get(f"{model.__name__}.{name}")
    description = field.description or " ".join(
        text for text in (note, _comments(model).get(name)) if text
    )
    cells = [f"`{name}`", kind, _default(field), "; ".join(allowed), _clean(description)]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _type_name(annotation: Any, metadata: list[Any]) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        metadata.extend(args[1:])
        return _type_name(args[0], metadata)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg, metadata) for arg in args if arg is not type(None))
    if origin is Literal:
        return "one of " + quoted(args)
    if origin is list:
        return f"array of {_type_name(args[0], metadata)}"
    if origin is dict:
        return f"table of {_type_name(args[1], metadata)}"
    if _is_model(annotation):
        return "table"
    names: dict[Any, str] = {str: "string", int: "integer", float: "float", bool: "boolean"}
    return names.get(annotation, "any")


def _bounds(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            parts.append(_bounds(list(item.metadata)))
        elif item is _SECONDS:
            parts.append(f"seconds, {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS:,}")
        elif item is _FRACTION:
            parts.append("0 to 1")
        elif item is _QUEUE_NAME:
            parts.append(f"at most {MAX_ID_BYTES} bytes")
        elif isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt:,}")
        elif isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {item.ge:,}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {item.le:,}")
        elif isinstance(item, annotated_types.MinLen):
            parts.append(f"length ≥ {item.min_length}")
        elif isinstance(item, annotated_types.MaxLen):
            parts.append(f"length ≤ {item.max_length}")
    return ", ".join(part for part in parts if part)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "(table)"
    return f"`{json.dumps(value)}`"


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment written just above its definition, and beside it."""
    source = textwrap.dedent(inspect.getsource(model))
    lines = source.splitlines()
    beside = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT and "fmt:" not in token.string
    }
    found: dict[str, str] = {}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        row = node.lineno - 2
        while row >= 0 and lines[row].strip().startswith("#"):
            above.insert(0, lines[row].strip().lstrip("#").strip())
            row -= 1
        end = node.end_lineno or node.lineno
        own = [beside[n] for n in range(node.lineno, end + 1)
               if n in beside and not lines[n - 1].strip().startswith("#")]  # fmt: skip
        if text := " ".join(above + own):
            found[node.target.id] = text
    return found


def _clean(text: str) -> str:
    """Docstring and comment text as Markdown: ``code`` to `code`, one line per paragraph."""
    text = text.replace("``", "`")
    return "\n\n".join(" ".join(par.split()) for par in text.split("\n\n"))


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading (lower case, spaces to dashes, punctuation dropped)."""
    kept = "".join(c for c in heading.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")
