"""AgenticGoKit's spellings in ``[orchestration]``, each on its own: what each means (as in
AgenticGoKit's code), and the one line each gets where agentflow cannot mean the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.cli.main import main
from agentflow.config import FlowConfig, load_config
from agentflow.config.code_checks import unrunnable
from agentflow.config.registered import CodeRegistry
from agentflow.errors import ConfigError

HANDLER = 'handler = "tests.agents:append"'
AGENTS = f"[agents.a]\n{HANDLER}\n[agents.b]\n{HANDLER}\n"


def load(tmp_path: Path, orchestration: str, agents: str = AGENTS) -> FlowConfig:
    path = tmp_path / "flow.toml"
    path.write_text(f"[orchestration]\n{orchestration}\n{agents}", encoding="utf-8")
    return load_config(path, check_handlers=False)


def refused(tmp_path: Path, orchestration: str, agents: str = AGENTS) -> str:
    """The refusal, which must be one line naming the file."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, orchestration, agents)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'flow.toml'}: "), message
    return message.split(": ", 1)[1]


# ----------------------------------------------------------- [orchestration] agents = [...]


@pytest.mark.parametrize(
    ("mode", "key"),
    [
        ("sequential", "sequential_agents"),
        ("collaborative", "collaborative_agents"),
        ("parallel", "collaborative_agents"),  # AgenticGoKit's parallel is its collaborative
        ("collaborate", "collaborative_agents"),
    ],
)
def test_agents_list_is_the_modes_list(tmp_path: Path, mode: str, key: str) -> None:
    config = load(tmp_path, f'mode = "{mode}"\nagents = ["b", "a"]')
    assert getattr(config.orchestration, key) == ["b", "a"]
    other = "collaborative_agents" if key == "sequential_agents" else "sequential_agents"
    assert getattr(config.orchestration, other) == []


def test_agents_list_of_one_is_the_loop_agent(tmp_path: Path) -> None:
    config = load(tmp_path, 'mode = "loop"\nagents = ["b"]\nmax_iterations = 3')
    assert config.orchestration.loop_agent == "b" and config.orchestration.max_iterations == 3


def test_agents_list_beside_an_equal_key_is_accepted(tmp_path: Path) -> None:
    config = load(tmp_path, 'mode = "sequential"\nagents = ["a"]\nsequential_agents = ["a"]')
    assert config.orchestration.sequential_agents == ["a"]


def test_agents_named_only_in_the_list_are_code_agents(tmp_path: Path) -> None:
    config = load(tmp_path, 'mode = "sequential"\nagents = ["a", "coded"]')
    assert config.orchestration.sequential_agents == ["a", "coded"]
    assert config.agents["coded"].handler != config.agents["a"].handler


@pytest.mark.parametrize(
    ("orchestration", "says"),
    [
        ('mode = "loop"\nagents = ["a", "b"]',
         "orchestration.agents: loop mode repeats one agent, and ['a', 'b'] names 2 "
         "(AgenticGoKit's loop runs only the first); name it in loop_agent"),
        ('mode = "mixed"\nagents = ["a", "b"]',
         "orchestration.agents: mixed mode runs some agents together and then others in turn: "
         "list them in collaborative_agents and sequential_agents"),
        ('mode = "route"\nagents = ["a"]',
         "orchestration.agents: route mode has no list of agents: each event goes to its target "
         "(or entry_agent), then to the agent each one names in meta['route']; remove agents"),
        ('mode = "sequential"\nagents = ["a"]\nsequential_agents = ["b"]',
         "orchestration.agents: ['a'] and sequential_agents = ['b'] disagree; keep one of them"),
        ('mode = "sequential"\nagents = "a"',
         "orchestration.agents: must be a list of agent names (got str)"),
    ],
)  # fmt: skip
def test_agents_list_that_cannot_be_mapped_is_refused(
    tmp_path: Path, orchestration: str, says: str
) -> None:
    assert refused(tmp_path, orchestration) == says


# ------------------------------------------------------------------------ timeout = "30s"


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [('"30s"', 30.0), ('"1m30s"', 90.0), ('"500ms"', 0.5), ('"2h"', 7200.0), ('"0s"', 300.0)],
)
def test_timeout_is_a_go_duration(tmp_path: Path, timeout: str, seconds: float) -> None:
    config = load(tmp_path, f'mode = "sequential"\nagents = ["a"]\ntimeout = {timeout}')
    # "0s" is Go's zero duration, AgenticGoKit's "unset": the default.
    assert config.orchestration.timeout_seconds == seconds


def test_timeout_beside_timeout_seconds(tmp_path: Path) -> None:
    base = 'mode = "sequential"\nagents = ["a"]\ntimeout = "30s"\n'
    assert load(tmp_path, base + "timeout_seconds = 30").orchestration.timeout_seconds == 30
    # timeout_seconds = 0 is AgenticGoKit's "unset".
    assert load(tmp_path, base + "timeout_seconds = 0").orchestration.timeout_seconds == 30
    assert refused(tmp_path, base + "timeout_seconds = 60") == (
        "orchestration.timeout: '30s' and timeout_seconds = 60 disagree; keep one of them"
    )


@pytest.mark.parametrize("timeout", ["60", '"60"', '"-1s"', '"1d"', "true"])
def test_timeout_that_is_not_a_duration_is_refused(tmp_path: Path, timeout: str) -> None:
    message = refused(tmp_path, f'mode = "sequential"\nagents = ["a"]\ntimeout = {timeout}')
    assert message.startswith("orchestration.timeout: ") and "is not a duration" in message
    assert "bare number as nanoseconds" in message and "timeout_seconds" in message


# --------------------------------------------------- collaborative without collaborative_agents


def test_collaborative_without_a_list_runs_every_enabled_agent(tmp_path: Path) -> None:
    agents = AGENTS + f"[agents.off]\n{HANDLER}\nenabled = false\n[agents.c]\n{HANDLER}\n"
    config = load(tmp_path, 'mode = "collaborative"', agents)
    assert config.orchestration.collaborative_agents == ["a", "b", "c"]
    config = load(tmp_path, 'mode = "parallel"\ncollaborative_agents = ["b"]', agents)
    assert config.orchestration.collaborative_agents == ["b"]


def test_collaborative_without_a_list_or_agents_runs_every_agent_code_registers(
    tmp_path: Path,
) -> None:
    config = load(tmp_path, 'mode = "collaborative"', agents="")
    assert unrunnable(config) == (
        f"flow {config.name!r}: collaborative mode and no agent listed or registered: register "
        "agents in code (runner.register_agent, or @agentflow.agent with --agents), or define "
        "them in the flow file"
    )
    registry = CodeRegistry()
    registry.register_agent("x", print)
    bound = registry.bind(config)
    assert bound.orchestration.collaborative_agents == ["x"] and unrunnable(bound) is None


# ------------------------------------------------------------------- route with no [agents]


def test_route_without_agents_routes_to_agents_registered_in_code(tmp_path: Path) -> None:
    config = load(tmp_path, 'mode = "route"\ntimeout_seconds = 30', agents="")
    assert config.mode == "route" and not config.agents
    disabled = f"[agents.a]\n{HANDLER}\nenabled = false\n"
    assert refused(tmp_path, 'mode = "route"', disabled) == (
        "agents: route mode needs at least one enabled agent"
    )


# ------------------------------------------------ what agentflow lacks: one line naming it


@pytest.mark.parametrize(
    ("orchestration", "agents", "says"),
    [
        ('mode = "custom"', "",
         "orchestration.mode: mode 'custom': custom orchestrators (AgenticGoKit's "
         "orchestrator_class) are not supported; allowed: route, sequential"),
        ('mode = "sequential"\nagents = ["a"]\n[orchestration.sequential]\nstop_on_error = true',
         "", "orchestration.sequential: AgenticGoKit's key is not supported; there are no "
         "per-mode tables"),
        ('mode = "collaborative"\n[orchestration.collaborative]\nconsensus_threshold = 0.8',
         AGENTS, "orchestration.collaborative: AgenticGoKit's key is not supported; consensus, "
         "voting and discussion rounds are not supported"),
        ('mode = "route"\nrouting_rules = []', AGENTS,
         "orchestration.routing_rules: AgenticGoKit's key is not supported; routing by "
         "patterns in the event's text is not supported"),
        ('mode = "route"\nmax_concurrent_agents = 3', AGENTS,
         "orchestration.max_concurrent_agents: AgenticGoKit's key is not supported; "
         "AgenticGoKit reads it from [runtime]"),
        ('mode = "sequential"\nagents = ["a"]', '[agents.a]\nsystem_prompt = "x"\n'
         "memory_enabled = true\n[agent_memory]\nenable_compression = true\n",
         "agent_memory.enable_compression: AgenticGoKit's key is not supported; memories are "
         "not compressed"),
        ('mode = "sequential"\nagents = ["a"]', f"[agents.a]\n{HANDLER}\ntemperature = 0.3\n",
         "agents.a.temperature: AgenticGoKit's key is not supported; an agent's temperature "
         "is agents.NAME.llm.temperature"),
    ],
)  # fmt: skip
def test_what_agentflow_lacks_is_named(
    tmp_path: Path, orchestration: str, agents: str, says: str
) -> None:
    assert refused(tmp_path, orchestration, agents).startswith(says)


# ------------------------------------------------------------- agents.NAME.tools_enabled

LLM = (
    '[llm]\nprovider = "ollama"\nmodel = "m"\n'
    '[[mcp.servers]]\nname = "web"\ntype = "stdio"\ncommand = "w"\n'
)


@pytest.mark.parametrize(
    ("keys", "servers"),
    [("tools_enabled = true", None), ("tools_enabled = false", []),
     ('tools_enabled = false\nmcp_servers = []', []),
     ('tools_enabled = true\nmcp_servers = ["web"]', ["web"])],
)  # fmt: skip
def test_tools_enabled_is_the_agents_mcp_servers(
    tmp_path: Path, keys: str, servers: list[str] | None
) -> None:
    """AgenticGoKit's tools_enabled: true, the agent may call tools (every enabled
    [[mcp.servers]], unless mcp_servers names fewer); false, it calls none."""
    config = load(tmp_path, 'mode = "sequential"\nagents = ["a"]',
                  f'{LLM}[agents.a]\nsystem_prompt = "x"\n{keys}\n')  # fmt: skip
    assert config.agents["a"].mcp_servers == servers


@pytest.mark.parametrize(
    ("keys", "says"),
    [('tools_enabled = false\nmcp_servers = ["web"]',
      "agents.a: tools_enabled = false, but mcp_servers = ['web'] gives the agent tools; keep "
      "one of them"),
     ('tools_enabled = false\ntools = ["tests.agents:append"]',
      "agents.a: tools_enabled = false, but tools = ['tests.agents:append'] gives the agent"),
     ("tools_enabled = true\nmcp_servers = []",
      "agents.a: tools_enabled = true, but mcp_servers = [] and no tools leave the agent none")],
)  # fmt: skip
def test_tools_enabled_against_its_own_tools_is_one_line(
    tmp_path: Path, keys: str, says: str
) -> None:
    agents = f'{LLM}[agents.a]\nsystem_prompt = "x"\n{keys}\n'
    assert refused(tmp_path, 'mode = "sequential"\nagents = ["a"]', agents).startswith(says)


def test_validate_accepts_the_spellings_and_refuses_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "flow.toml"
    path.write_text(
        f'[orchestration]\nmode = "sequential"\nagents = ["a"]\ntimeout = "45s"\n{AGENTS}',
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 0
    assert "ok: flow" in capsys.readouterr().out
    path.write_text('[orchestration]\nmode = "mixed"\nagents = ["a"]\n', encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "orchestration.agents: mixed mode" in err
    assert "Traceback" not in err
