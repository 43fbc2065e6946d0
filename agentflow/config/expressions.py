"""CEL expressions (``when = "data.total > 100 && metadata.region == 'eu'"``): checked when a
config is loaded, evaluated in activities (the bus's fan-out, route decisions).

CEL (the Common Expression Language of Kubernetes and Envoy, here ``cel-python``) has no side
effects, no I/O and no loops beyond its bounded macros. An expression sees one event as
``VARIABLES``: ``data`` (its data: a publish's data, a run's input state), ``metadata`` (its
metadata, strings), ``topic`` (the topic it was published to, else ""), ``id`` (its id) and
``source`` (who sent it: the publisher for a bus event, the source agent for a run's event).

Workflow code never evaluates one: ``celpy`` is imported lazily, so the config models that
workflows import (and the sandbox re-imports) do not pull it in.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

VARIABLES = ("data", "metadata", "topic", "id", "source")
# Names CEL itself defines (type names) that may appear as identifiers.
_TYPE_NAMES = ("bool", "int", "uint", "double", "string", "bytes", "list", "map", "type")
# Macros whose first argument binds a new variable: ``data.items.exists(i, i.qty > 2)``.
_BINDING_MACROS = ("all", "exists", "exists_one", "map", "filter")
# Compiled programs kept per process (a worker evaluates the same few expressions).
_CACHE_SIZE = 1024


class ExpressionFailed(ValueError):
    """An expression that could not be evaluated on an event (a missing field, a wrong
    type), or did not give a bool."""


def expression_problem(expression: object) -> str | None:
    """Why ``expression`` is not a usable condition (None when it is): not a string, a syntax
    error, or a variable other than ``VARIABLES``."""
    if not isinstance(expression, str) or not expression.strip():
        return "a CEL expression must be a non-empty string"
    try:
        tree = _compiled(expression)[0]
    except Exception as err:  # celpy's parse errors carry the caret line
        detail = " ".join(str(err).split())
        return f"CEL syntax error in {expression!r}: {detail}"
    unknown = sorted(_identifiers(tree) - set(VARIABLES) - set(_TYPE_NAMES))
    if unknown:
        return (
            f"CEL expression {expression!r} uses unknown variable {unknown[0]!r}; an event's "
            f"variables are {', '.join(VARIABLES)}"
        )
    return None


def event_variables(
    data: dict[str, Any], metadata: dict[str, str], topic: str, event_id: str, source: str
) -> dict[str, Any]:
    """The activation of one event: JSON values, as CEL sees them."""
    return {"data": data, "metadata": metadata, "topic": topic, "id": event_id, "source": source}


def evaluate(expression: str, variables: dict[str, Any]) -> bool:
    """Whether ``expression`` holds for ``variables`` (see ``event_variables``); raises
    ExpressionFailed saying why when it cannot be evaluated or gives something else."""
    from celpy.celtypes import BoolType

    value = _value(expression, variables)
    if not isinstance(value, BoolType):
        raise ExpressionFailed(f"{expression!r} gave {value!r}, not a bool")
    return bool(value)


def evaluate_key(expression: str, variables: dict[str, Any]) -> str:
    """The correlation key ``expression`` gives for ``variables`` (``[patterns.NAME] key``):
    a string, or a number or bool as its text; raises ExpressionFailed otherwise."""
    from celpy.celtypes import BoolType, DoubleType, IntType, StringType, UintType

    value = _value(expression, variables)
    if isinstance(value, BoolType):
        return "true" if value else "false"
    if isinstance(value, (StringType, IntType, UintType, DoubleType)):
        text = str(value)
        if text:
            return text
    raise ExpressionFailed(f"{expression!r} gave {value!r}, not a non-empty string or number")


def _value(expression: str, variables: dict[str, Any]) -> Any:
    """What ``expression`` gives for ``variables``; ExpressionFailed when it cannot be
    evaluated (a missing field, a wrong type: the event's failure, not the worker's)."""
    from celpy.adapter import json_to_cel
    from celpy.evaluation import CELEvalError

    program = _compiled(expression)[1]
    activation = {name: json_to_cel(value) for name, value in variables.items()}
    try:
        value = program.evaluate(activation)
    except CELEvalError as err:
        raise ExpressionFailed(f"{expression!r} failed: {_reason(err)}") from None
    except Exception as err:  # a type CEL did not foresee: still the event's failure
        raise ExpressionFailed(f"{expression!r} failed: {err}") from None
    if isinstance(value, CELEvalError):
        raise ExpressionFailed(f"{expression!r} failed: {_reason(value)}")
    return value


def _reason(err: Exception) -> str:
    return str(err.args[0]) if err.args else str(err)


@lru_cache(maxsize=_CACHE_SIZE)
def _compiled(expression: str) -> tuple[Any, Any]:
    import celpy

    env = celpy.Environment()
    tree = env.compile(expression)
    return tree, env.program(tree)


def _identifiers(tree: Any) -> set[str]:
    """The free identifiers of a parsed expression (macro-bound variables excluded)."""
    names: set[str] = set()
    bound: set[str] = set()
    for node in tree.iter_subtrees():
        if node.data == "ident":
            names.add(str(node.children[0]))
        elif node.data == "member_dot_arg" and str(node.children[1]) in _BINDING_MACROS:
            args = node.children[2]
            first = args.children[0] if args is not None and args.children else None
            if first is not None:
                bound.update(
                    str(sub.children[0]) for sub in first.iter_subtrees() if sub.data == "ident"
                )
    return names - bound


def warm_up() -> None:
    """Import CEL and build its parser (about a second of CPU, once per process), so the first
    fan-out or route decision that needs it does not pay for it. Workers call it in a thread."""
    _compiled("true")
