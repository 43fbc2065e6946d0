"""One representative flow per mode (plus failure paths), shared by the replay tests and the
script that records their golden histories (``python -m tests.record_histories``).
"""

from __future__ import annotations

from typing import Any

from agentflow.config import FlowConfig
from tests.conftest import flow_config

APPEND = "tests.agents:append"
BUS = "tests.agents:bus_agent"
SAGA = "tests.compensation_agents"


def append_then_noop() -> FlowConfig:
    """Two sequential agents: ``a`` appends to the trail, ``b`` changes nothing."""
    return flow_config(
        "sequential", {"a": APPEND, "b": "tests.agents:noop"}, sequential_agents=["a", "b"]
    )


def sample_flows() -> dict[str, tuple[FlowConfig, dict[str, Any], dict[str, Any]]]:
    """name -> (config, input data, start options)."""
    return {
        "sequential": (
            flow_config("sequential", {"a": APPEND, "b": APPEND}, sequential_agents=["a", "b"]),
            {},
            {},
        ),
        "compensated_failure": (  # c fails: b's then a's compensations run (run_compensation)
            flow_config(
                "sequential",
                {
                    name: {"handler": f"{SAGA}:book", "compensate": f"{SAGA}:undo"}
                    for name in ("a", "b")
                }
                | {"c": f"{SAGA}:fail"},
                sequential_agents=["a", "b", "c"],
            ),
            {},
            {},
        ),
        "sequential_failure": (
            flow_config(
                "sequential", {"a": APPEND, "b": "tests.agents:fatal"}, sequential_agents=["a", "b"]
            ),
            {},
            {},
        ),
        "collaborative": (
            flow_config(
                "collaborative",
                {
                    "p": "tests.agents:set_shared",
                    "q": "tests.agents:set_shared",
                    "bad": "tests.agents:fatal",
                },
                collaborative_agents=["p", "q", "bad"],
                failure_threshold=0.5,
                max_concurrency=2,
            ),
            {},
            {},
        ),
        "route": (
            flow_config("route", {n: "tests.agents:router" for n in ("a", "b", "c")}),
            {"routes": {"a": "b", "b": "c"}},
            {"target": "a"},
        ),
        "route_when": (  # [[orchestration.routes]]: the decide_route activity picks "b"
            flow_config(
                "route",
                {n: "tests.agents:router" for n in ("a", "b", "c")},
                routes=[{"when": "data.total > 100", "agent": "b"}, {"agent": "a"}],
            ),
            {"total": 150, "routes": {"b": "c"}},
            {},
        ),
        "route_cycle": (
            flow_config("route", {n: "tests.agents:router" for n in ("a", "b")}, max_hops=2),
            {"routes": {"a": "b", "b": "a"}},
            {"target": "a"},
        ),
        "loop": (
            flow_config("loop", {"n": "tests.agents:counter"}, loop_agent="n", max_iterations=9),
            {"stop_at": 5},
            {},
        ),
        "publish": (
            flow_config(
                "sequential",
                {
                    "a": BUS,
                    "b": BUS,
                    "s1": {"handler": BUS, "subscribes": ["news"]},
                    "bad": {"handler": "tests.agents:fatal", "subscribes": ["news"]},
                    "s2": {"handler": BUS, "subscribes": ["done"]},
                },
                sequential_agents=["a", "b"],
            ),
            {"publish": {"a": "news", "s1": "done"}},
            {},
        ),
        "mixed": (
            flow_config(
                "mixed",
                {"p": "tests.agents:set_shared", "q": "tests.agents:set_shared", "s": APPEND},
                collaborative_agents=["p", "q"],
                sequential_agents=["s"],
            ),
            {},
            {},
        ),
    }
