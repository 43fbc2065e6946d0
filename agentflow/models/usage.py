"""What LLM agents used: input and output tokens, model requests and tool calls.

Every model request reports its usage; an agent's result carries the sum of its requests
(``AgentResult.usage``), a run the sum of its agents (``FlowResult.usage``), a session the sum
of its events (``SessionCounts.usage``). Workflow code sums these, so this module is pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from pydantic import BaseModel


class Usage(BaseModel):
    """Tokens and calls; all zero for an agent that asked no model."""

    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    tool_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            requests=self.requests + other.requests,
            tool_calls=self.tool_calls + other.tool_calls,
        )

    def __bool__(self) -> bool:
        return bool(self.requests or self.tool_calls or self.total_tokens)


def total(usages: Iterable[Usage | None]) -> Usage:
    """The sum of ``usages`` (None counts as nothing)."""
    summed = Usage()
    for usage in usages:
        if usage is not None:
            summed = summed + usage
    return summed


# The error type of a run stopped for spending more tokens than ``max_tokens_per_run``.
BUDGET_ERROR = "TokenBudgetExceeded"


class TokenBudget(NamedTuple):
    """``max_tokens_per_run``, and the tokens the run had used before an agent started."""

    limit: int
    spent: int

    def exceeded_by(self, agent: str, usage: Usage) -> str | None:
        """Why ``agent``, having used ``usage``, stops the run; None while within budget."""
        run_total = self.spent + usage.total_tokens
        if run_total <= self.limit:
            return None
        return (
            f"agent {agent!r} took the run to {run_total} tokens, over its budget of "
            f"{self.limit} (max_tokens_per_run)"
        )
