"""AgenticGoKit's configuration-based orchestration, in Python: the flow file as AgenticGoKit
writes it (agentflow.toml here, unchanged), its seven agents registered in code, and one
event whose orchestration the file decides. Change ``mode`` in the file to ``sequential`` or
``loop`` and the same program runs the other agents, with no code change.

Run it with ``python examples/agenticgokit/orchestration/main.py``; with no Temporal server
configured and none on localhost:7233, the runner starts one and stops it at the end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import agentflow
from agentflow import Event, State, new_event

runner = agentflow.Runner.from_config(Path(__file__).with_name("agentflow.toml"))


def step(name: str, key: str, value: object) -> Callable[[Event, State], dict[str, object]]:
    """An agent that records what it did (and, as quality_checker, ends the loop)."""

    def handler(event: Event, state: State) -> dict[str, object]:
        done = {key: value, f"{name}_done": True}
        if name == "quality_checker":
            done["loop_complete"] = True
        return done

    return handler


AGENTS = {
    "analyzer": ("patterns", ["weekly peak on Fridays"]),
    "validator": ("quality", "consistent"),
    "processor": ("rows", 1200),
    "collector": ("collected", True),
    "transformer": ("transformed", True),
    "publisher": ("published", True),
    "quality_checker": ("quality_score", 0.97),
}
for agent, (key, value) in AGENTS.items():
    runner.register_agent(agent, step(agent, key, value))


async def main() -> None:
    async with runner:
        event = new_event("analyzer", {"task": "analyze_market_data",
                                       "dataset": "Q4_sales_data.json", "priority": "high"},
                          {"session_id": "orchestration-demo-001",
                           "workflow_id": "market-analysis"})  # fmt: skip
        outcome = await (await runner.emit(event, wait=True)).result()
        ran = sorted(
            key.removesuffix("_done") for key in outcome.state.data if key.endswith("_done")
        )
        print(f"mode {runner.config.mode}: {outcome.status}; agents that ran: {', '.join(ran)}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("agentflow.runner").setLevel(logging.INFO)  # which server, which queue
    asyncio.run(main())
