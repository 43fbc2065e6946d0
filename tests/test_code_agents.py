"""Agents and callbacks registered in code, and the runner that serves its flow in this process
(``async with runner:``), against a real dev server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

import agentflow
from agentflow import CallbackArgs, ConfigError, Event, Runner, State
from agentflow.client.runner import Runner as ClientRunner
from agentflow.config import parse_config
from agentflow.config.registered import CodeRegistry, code_handler
from agentflow.worker.serve import build_worker
from tests.conftest import REPO, cli


def _config(mode: str = "sequential", **tables: Any) -> agentflow.FlowConfig:
    orchestration = {"mode": mode, "retry": {"initial_interval_seconds": 0.05}}
    if mode == "sequential":
        orchestration["sequential_agents"] = ["collect", "shape", "publish"]
    raw = {"agent_flow": {"name": f"code-{uuid.uuid4().hex[:6]}"}, "orchestration": orchestration}
    return parse_config(raw | tables, base_dir=REPO, check_handlers=True)


def _runner(client: Client, config: agentflow.FlowConfig) -> Runner:
    return Runner(config, client, f"code-{uuid.uuid4().hex[:8]}")


async def test_agents_and_callbacks_registered_in_code_run_with_their_toml_settings(
    client: Client,
) -> None:
    # "shape" keeps its [agents] table for its settings: an LLM agent by default (no handler),
    # it becomes the registered function, with one retry.
    config = _config(agents={"shape": {"system_prompt": "unused", "retry_attempts": 1}})
    runner, calls, seen = _runner(client, config), [], []
    attempts: dict[str, int] = {}

    @runner.agent("collect")
    def collect(event: Event, state: State) -> dict[str, Any]:
        calls.append("collect")
        return {"items": [1, 2, 3]}

    async def shape(event: Event, state: State) -> State:
        attempts["shape"] = attempts.get("shape", 0) + 1
        if attempts["shape"] == 1:
            raise RuntimeError("first attempt fails")
        calls.append("shape")
        return State(data={**state.data, "total": sum(state.data["items"])}, meta=state.meta)

    runner.register_agent("shape", shape)
    runner.register_agent("publish", lambda event, state: calls.append("publish") and None)
    runner.register_callback("BeforeAgentRun", "monitor", lambda args: seen.append(args.agent))

    def stamp(args: CallbackArgs) -> State:
        return State(data={**args.state.data, "stamped": True}, meta=args.state.meta)

    runner.register_callback("after_agent_run", "stamp", stamp)
    runner.register_callback("after_agent_run", "noise", lambda args: seen.append("noise"))
    runner.unregister_callback("after_agent_run", "noise")
    assert set(runner.callbacks()) == {"before_agent_run", "after_agent_run"}
    assert runner.config.agents["shape"].handler == code_handler("shape")
    assert runner.config.agents["shape"].retry_attempts == 1  # its TOML settings stay

    async with runner:
        result = await runner.run({"n": 1})
        with pytest.raises(ConfigError, match="the runner is serving"):
            runner.register_agent("late", collect)

    assert result.status == "completed", result
    assert result.state.data["total"] == 6 and result.state.data["stamped"] is True
    assert calls == ["collect", "shape", "publish"] and attempts["shape"] == 2
    assert seen == ["collect", "shape", "shape", "publish"]  # agent hooks run per attempt
    runner.register_agent("late", collect)  # open again once it stopped serving


async def test_route_mode_events_reach_agents_registered_only_in_code(client: Client) -> None:
    runner = _runner(client, _config("route", agents={"greet": {"handler": "tests.agents:noop"}}))
    runner.register_agent("echo", lambda event, state: {"echoed": state.data["text"]})
    async with runner:
        handle = await runner.emit({"text": "hi"}, target="echo", wait=True)
        outcome = await handle.result()
    assert outcome.state.data["echoed"] == "hi"


def test_one_name_defined_both_ways_is_one_clear_error() -> None:
    registry = CodeRegistry()
    registry.register_agent("greet", lambda event, state: None)
    config = _config("route", agents={"greet": {"handler": "tests.agents:noop"}})
    with pytest.raises(ConfigError, match=r"agent 'greet' is defined twice: handler "):
        registry.bind(config, "agentflow.toml")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.register_callback("before_agent", "x", print),
         r"unknown hook 'before_agent' \(did you mean 'before_agent_run'"),
        (lambda r: r.register_agent("x", "not a function"), r"agent 'x': 'not a function' is not"),
        (lambda r: r.register_agent("x", dict), r"is not a function \(a type\)"),
        (lambda r: r.register_agent("", print), "agent name '': must be a non-empty string"),
        (lambda r: r.unregister_callback("agent_error", "x"), "no callback 'x' at agent_error"),
    ],
)  # fmt: skip
def test_bad_registrations_are_one_clear_error(call: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call(CodeRegistry())


async def test_a_worker_without_a_handler_for_a_named_agent_stops_at_start(
    client: Client,
) -> None:
    config = _config()  # collect, shape and publish: none has a handler
    registry = CodeRegistry()
    registry.register_agent("collect", print)
    with pytest.raises(ConfigError) as caught:
        build_worker(client, [(registry.bind(config), REPO)], code=registry)
    assert str(caught.value).count("\n") == 0
    assert "no handler for agents 'shape', 'publish': register them" in str(caught.value)


FLOW = """\
[agent_flow]
name = "registered"
[orchestration]
mode = "sequential"
sequential_agents = ["collector", "transformer"]
"""
MODULE = """\
import agentflow

@agentflow.agent("collector")
def collector(event, state):
    return {"collected": True}
"""


async def test_validate_lists_the_agents_code_must_register_and_checks_modules(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "agentflow.toml").write_text(FLOW)
    (tmp_path / "seed_agents_partial.py").write_text(MODULE)
    code, out, err = await cli(capsys, "validate", "agentflow.toml")
    assert code == 0, err
    assert "agents that code must register: 'collector', 'transformer' (check" in out
    code, out, err = await cli(capsys, "validate", "--agents", "seed_agents_partial")
    assert code == 2 and err.count("\n") == 1
    assert "no handler for agent 'transformer': register it in code" in err
    code, out, err = await cli(capsys, "worker", "--agents", "no_such_module")
    assert (code, out) == (2, "")
    assert err.startswith("agentflow: error: --agents 'no_such_module': cannot import it: ")


async def test_a_run_that_thinks_a_code_agent_is_an_llm_agent_fails_saying_so(
    client: Client,
) -> None:
    # The worker registers "shape" in code; a client that never saw that registration starts
    # a run in which "shape" (a table with a system_prompt, and an [llm] provider) asks an LLM.
    config = _config("sequential", llm={"provider": "mock", "model": "m"},
                     agents={name: {"system_prompt": "Hi."} for name in ("collect", "shape",
                                                                         "publish")})  # fmt: skip
    registry = CodeRegistry()
    for name in ("collect", "shape", "publish"):
        registry.register_agent(name, lambda event, state: None)
    queue = f"code-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, [(registry.bind(config), REPO)], task_queue=queue,
                            code=registry):  # fmt: skip
        with pytest.raises(agentflow.FlowFailedError) as failed:
            await ClientRunner(config, client, queue).run({})
    assert "agent 'collect' is registered in code on this worker, but the run was started" in str(
        failed.value
    )


async def test_a_route_flow_with_no_agent_at_all_does_not_start_a_worker(client: Client) -> None:
    with pytest.raises(ConfigError, match="route mode and no agent to route to: register agents"):
        build_worker(client, [(_config("route"), REPO)])
