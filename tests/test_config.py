"""agentflow.toml validation: every bad file gives one clear message (file, key path, fix)."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from agentflow.config import FlowConfig, load_config
from agentflow.config.code_checks import describe_unbound, unbound_agents, unbound_message
from agentflow.config.registered import code_handler
from agentflow.errors import ConfigError

# The shape of the seeds' examples (AgenticGoKit agentflow.toml), with consistent agent names.
SEED = """
[agent_flow]
name = "multi-agent-system"
version = "1.0.0"

[llm]
provider = "ollama"
model = "gemma3:1b"
temperature = 0.7

[orchestration]
mode = "collaborative" # route, collaborative, sequential, loop, mixed
timeout_seconds = 30
max_iterations = 5
retry_attempts = 3
collaborative_agents = ["analyzer", "validator", "processor"]
sequential_agents = ["analyzer", "processor"]
loop_agent = "validator"
failure_threshold = 0.5
max_concurrency = 2

[agents.analyzer]
role = "data_analyzer"
system_prompt = "You analyze data for patterns and insights."
enabled = true
capabilities = ["analysis", "pattern_recognition"]

[agents.validator]
role = "data_validator"
description = "Checks the data"
system_prompt = "You validate data quality and consistency."
enabled = true
capabilities = ["validation", "quality_check"]
timeout_seconds = 12

[agents.processor]
role = "data_processor"
handler = "tests.agents:append"
capabilities = ["processing", "transformation"]
"""

ORCH_SEQ = """
[orchestration]
mode = "sequential"
sequential_agents = ["a"]

[agents.a]
handler = "tests.agents:append"
"""


def write(tmp_path: Path, text: str, name: str = "agentflow.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error(tmp_path: Path, text: str, name: str = "flow.toml") -> str:
    """The ConfigError message for ``text``; every line names the file, none is a traceback."""
    path = write(tmp_path, text, name)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "Traceback" not in message
    for line in message.splitlines():
        assert line.startswith(f"{path}: "), line
    return message


def handler_module(tmp_path: Path, body: str) -> str:
    """Write a handler module beside the config; a unique name avoids sys.modules collisions."""
    name = f"handlers_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return name


def test_seed_style_file_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SEED))
    assert isinstance(config, FlowConfig)
    assert config.name == "multi-agent-system"
    assert config.agent_flow.version == "1.0.0"
    assert config.llm is not None
    assert (config.llm.provider, config.llm.model, config.llm.temperature) == (
        "ollama",
        "gemma3:1b",
        0.7,
    )
    orch = config.orchestration
    assert config.mode == "collaborative"
    assert (orch.timeout_seconds, orch.max_iterations, orch.retry_attempts) == (30, 5, 3)
    assert orch.collaborative_agents == ["analyzer", "validator", "processor"]
    assert orch.loop_agent == "validator"
    assert (orch.failure_threshold, orch.max_concurrency) == (0.5, 2)
    validator = config.agents["validator"]
    assert validator.role == "data_validator"
    assert validator.capabilities == ["validation", "quality_check"]
    assert validator.timeout_seconds == 12
    assert validator.system_prompt.startswith("You validate")
    assert config.agents["processor"].handler == "tests.agents:append"
    assert config.enabled_agents() == ["analyzer", "validator", "processor"]


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.toml: file not found"):
        load_config(tmp_path / "nothere.toml")


def test_toml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    message = error(tmp_path, '[agent_flow]\nname = "x"\n[orchestration\nmode = "loop"\n')
    assert "invalid TOML" in message
    assert "line 3" in message


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[agent_flow]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "UTF-8" in str(info.value)


@pytest.mark.parametrize(
    ("text", "key", "suggestion", "allowed"),
    [
        ("[orchestratoin]\n" + ORCH_SEQ, "orchestratoin", "orchestration", "agent_flow"),
        (
            ORCH_SEQ.replace('mode = "sequential"', 'mode = "sequential"\nmax_iteration = 3'),
            "orchestration.max_iteration",
            "max_iterations",
            "failure_threshold",
        ),
        (ORCH_SEQ + "rol = 'x'\n", "agents.a.rol", "role", "system_prompt"),
        (
            ORCH_SEQ + "[agents.a.retry]\ninitial_interval = 1\n",
            "agents.a.retry.initial_interval",
            "initial_interval_seconds",
            "backoff_coefficient",
        ),
    ],
)
def test_unknown_key_says_did_you_mean(
    tmp_path: Path, text: str, key: str, suggestion: str, allowed: str
) -> None:
    message = error(tmp_path, text)
    assert f"{key}: unknown key (did you mean {suggestion!r}?)" in message
    assert "allowed keys:" in message
    assert allowed in message.split("allowed keys:")[1]


def test_unknown_mode_suggests_and_lists_modes(tmp_path: Path) -> None:
    message = error(tmp_path, ORCH_SEQ.replace('"sequential"', '"sequentail"', 1))
    assert "orchestration.mode: unknown mode 'sequentail'" in message
    assert "did you mean 'sequential'?" in message
    for mode in ("route", "sequential", "collaborative", "loop", "mixed"):
        assert mode in message
    assert message.count("sequentail") == 1  # no repeated "(got ...)"


@pytest.mark.parametrize("alias", ["collaborate", "parallel", "collaborative"])
def test_collaborative_aliases(tmp_path: Path, alias: str) -> None:
    text = f"""
    [orchestration]
    mode = "{alias}"
    collaborative_agents = ["a"]
    [agents.a]
    handler = "tests.agents:append"
    """
    assert load_config(write(tmp_path, text)).mode == "collaborative"


@pytest.mark.parametrize(
    ("mode", "key"),
    [
        ("sequential", "sequential_agents"),
        ("mixed", "collaborative_agents"),
        ("mixed", "sequential_agents"),
        ("loop", "loop_agent"),
    ],
)
def test_mode_specific_required_keys(tmp_path: Path, mode: str, key: str) -> None:
    others = {
        "sequential_agents": 'sequential_agents = ["a"]',
        "collaborative_agents": 'collaborative_agents = ["a"]',
    }
    lines = [v for k, v in others.items() if k != key and mode == "mixed"]
    text = f'[orchestration]\nmode = "{mode}"\n' + "\n".join(lines)
    text += '\n[agents.a]\nhandler = "tests.agents:append"\n'
    message = error(tmp_path, text)
    what = "name the agent to repeat" if key == "loop_agent" else "list the agents to run"
    assert f"orchestration.{key}: required for mode = {mode!r} ({what})" in message


def test_missing_orchestration_table(tmp_path: Path) -> None:
    message = error(tmp_path, '[agents.a]\nhandler = "tests.agents:append"\n')
    assert "orchestration: required key is missing" in message


@pytest.mark.parametrize(
    ("agent", "problem"), [("off", "agent 'off' has enabled = false; enable it or remove it")]
)
@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("sequential_agents", '["a", "{}"]', "orchestration.sequential_agents[1]"),
        ("collaborative_agents", '["{}"]', "orchestration.collaborative_agents[0]"),
        ("loop_agent", '"{}"', "orchestration.loop_agent"),
    ],
)
def test_orchestration_names_an_undefined_or_disabled_agent(
    tmp_path: Path, key: str, value: str, path: str, agent: str, problem: str
) -> None:
    listed = "" if key == "sequential_agents" else 'sequential_agents = ["a"]'
    text = f"""
    [orchestration]
    mode = "sequential"
    {listed}
    {key} = {value.format(agent)}
    [agents.a]
    handler = "tests.agents:append"
    [agents.ghosts]
    handler = "tests.agents:append"
    [agents.off]
    handler = "tests.agents:append"
    enabled = false
    """
    assert f"{path}: {problem}" in error(tmp_path, text)


def test_an_agent_the_orchestration_names_but_agents_lacks_is_one_code_registers(
    tmp_path: Path,
) -> None:
    text = ORCH_SEQ.replace('["a"]', '["a", "ghost"]') + '[agents.ghosts]\nhandler = "x:y"\n'
    config = load_config(write(tmp_path, text), check_handlers=False)
    assert config.agents["ghost"].handler == code_handler("ghost")
    unbound = unbound_agents(config)
    assert unbound == ["ghost"]
    assert describe_unbound(config, unbound) == "'ghost' (did you mean 'ghosts'?)"


def test_disabled_agent_outside_orchestration_is_fine(tmp_path: Path) -> None:
    text = ORCH_SEQ + '[agents.off]\nhandler = "no.such.module:fn"\nenabled = false\n'
    config = load_config(write(tmp_path, text))
    assert config.enabled_agents() == ["a"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """
    [orchestration]
    mode = "sequential"
    sequential_agents = ["x", "y"]
    [agents.x]
    handler = "tests.agents:append"
    enabled = false
    [agents.y]
    handler = "tests.agents:append"
    enabled = false
    """
    message = error(tmp_path, text)
    assert len(message.splitlines()) == 2
    assert "'x' has enabled = false" in message and "'y' has enabled = false" in message


@pytest.mark.parametrize(
    ("body", "attr", "expected"),
    [
        ("def fn(event, state):\n    return None\n", "missing", "has no attribute 'missing'"),
        ("fn = 42\n", "fn", "is not callable (it is a int)"),
        ("import not_a_module_zz9\n", "fn", "ModuleNotFoundError"),
        ("raise RuntimeError('boom at import')\n", "fn", "RuntimeError: boom at import"),
    ],
)
def test_bad_handler_in_the_config_directory(
    tmp_path: Path, body: str, attr: str, expected: str
) -> None:
    module = handler_module(tmp_path, body)
    message = error(tmp_path, ORCH_SEQ.replace("tests.agents:append", f"{module}:{attr}"))
    assert "agents.a.handler: " in message
    assert expected in message


def test_handler_module_that_does_not_exist(tmp_path: Path) -> None:
    message = error(tmp_path, ORCH_SEQ.replace("tests.agents:append", "no_such_pkg_q7.mod:fn"))
    assert "agents.a.handler: cannot import module 'no_such_pkg_q7.mod'" in message
    assert "No module named 'no_such_pkg_q7'" in message


@pytest.mark.parametrize("path", ["tests.agents", "tests.agents:", ":append", ""])
def test_malformed_handler_path(tmp_path: Path, path: str) -> None:
    message = error(tmp_path, ORCH_SEQ.replace("tests.agents:append", path))
    assert "agents.a.handler:" in message
    assert "must look like 'package.module:function'" in message


def test_handlers_beside_the_config_import_sync_and_async(tmp_path: Path) -> None:
    module = handler_module(
        tmp_path,
        """
        def sync_fn(event, state):
            return {"sync": True}

        async def async_fn(event, state):
            return {"async": True}

        class Holder:
            @staticmethod
            def nested(event, state):
                return None
        """,
    )
    text = f"""
    [orchestration]
    mode = "sequential"
    sequential_agents = ["s", "a", "n"]
    [agents.s]
    handler = "{module}:sync_fn"
    [agents.a]
    handler = "{module}:async_fn"
    [agents.n]
    handler = "{module}:Holder.nested"
    """
    config = load_config(write(tmp_path, text))
    assert config.agents["n"].handler == f"{module}:Holder.nested"


def test_check_handlers_false_skips_imports(tmp_path: Path) -> None:
    path = write(tmp_path, ORCH_SEQ.replace("tests.agents:append", "no_such_pkg_q7:fn"))
    assert load_config(path, check_handlers=False).agents["a"].handler == "no_such_pkg_q7:fn"


@pytest.mark.parametrize(
    ("table", "line", "key"),
    [
        ("orchestration", "timeout_seconds = -5", "orchestration.timeout_seconds"),
        ("orchestration", "max_iterations = 0", "orchestration.max_iterations"),
        ("orchestration", "max_iterations = -1", "orchestration.max_iterations"),
        ("orchestration", "max_concurrency = 0", "orchestration.max_concurrency"),
        ("agents.a", "timeout_seconds = -1.5", "agents.a.timeout_seconds"),
    ],
)
def test_zero_and_negative_limits(tmp_path: Path, table: str, line: str, key: str) -> None:
    anchor = 'sequential_agents = ["a"]' if table == "orchestration" else 'tests.agents:append"'
    message = error(tmp_path, ORCH_SEQ.replace(anchor, f"{anchor}\n{line}"))
    value = line.split("=")[1].strip()
    assert f"{key}: " in message
    assert "greater than 0" in message
    assert f"(got {value})" in message or f"(got {float(value)})" in message


@pytest.mark.parametrize("value", ["-0.1", "1.5", "2"])
def test_failure_threshold_outside_0_to_1(tmp_path: Path, value: str) -> None:
    text = ORCH_SEQ.replace(
        'sequential_agents = ["a"]', f'sequential_agents = ["a"]\nfailure_threshold = {value}'
    )
    message = error(tmp_path, text)
    assert "orchestration.failure_threshold: must be between 0 and 1" in message
    assert f"(got {value})" in message


@pytest.mark.parametrize("value", ["0", "1", "0.25"])
def test_failure_threshold_bounds_are_allowed(tmp_path: Path, value: str) -> None:
    text = ORCH_SEQ.replace(
        'sequential_agents = ["a"]', f'sequential_agents = ["a"]\nfailure_threshold = {value}'
    )
    assert load_config(write(tmp_path, text)).orchestration.failure_threshold == float(value)


@pytest.mark.parametrize(
    ("anchor", "key"),
    [
        ('sequential_agents = ["a"]', "orchestration.retry_attempts"),
        ('handler = "tests.agents:append"', "agents.a.retry_attempts"),
    ],
)
def test_negative_retry_attempts(tmp_path: Path, anchor: str, key: str) -> None:
    message = error(tmp_path, ORCH_SEQ.replace(anchor, f"{anchor}\nretry_attempts = -1"))
    assert f"{key}: Input should be greater than or equal to 0 (got -1)" in message


def test_agent_without_handler_and_without_llm_is_one_code_must_register(
    tmp_path: Path,
) -> None:
    # AgenticGoKit's files keep tables for agents their programs register in code; with no
    # [llm] provider such an agent can only be one, and the worker says so if none registers it.
    text = ORCH_SEQ + '[agents.writer]\nsystem_prompt = "You write."\n'
    config = load_config(write(tmp_path, text))
    assert config.agents["writer"].handler == code_handler("writer")
    assert config.agents["writer"].system_prompt == "You write."
    message = unbound_message(config, unbound_agents(config), "agentflow.toml")
    assert "no handler for agent 'writer' (it has LLM settings, but no [llm] provider" in message
    assert "register it in code" in message


@pytest.mark.parametrize("key", ["provider", "type"])
def test_llm_unknown_provider(tmp_path: Path, key: str) -> None:
    message = error(tmp_path, f'[llm]\n{key} = "olama"\n' + ORCH_SEQ)
    assert f"llm.{key}: unknown provider 'olama' (did you mean 'ollama'?)" in message
    assert "allowed: anthropic, azure, mock, ollama, openai, openai-compatible" in message


def test_llm_type_is_an_alias_of_provider(tmp_path: Path) -> None:
    text = '[llm]\ntype = "ollama"\nmodel = "m"\n' + ORCH_SEQ
    text += '[agents.writer]\nsystem_prompt = "You write."\n'
    config = load_config(write(tmp_path, text))
    assert config.llm is not None and config.llm.provider == "ollama"
    assert config.agents["writer"].handler is None


def test_llm_agents_need_a_model(tmp_path: Path) -> None:
    text = '[llm]\nprovider = "anthropic"\n' + ORCH_SEQ
    text += '[agents.w]\nsystem_prompt = "You write."\n'
    message = error(tmp_path, text)
    assert message.endswith('llm.model: required by the LLM agents w (e.g. "gemma3:1b")')


def test_llm_unknown_key(tmp_path: Path) -> None:
    message = error(tmp_path, '[llm]\nprovider = "openai"\napi_kye = "${K}"\n' + ORCH_SEQ)
    assert "llm.api_kye: unknown key (did you mean 'api_key'?)" in message


def test_per_agent_retry_overrides(tmp_path: Path) -> None:
    text = """
    [orchestration]
    mode = "sequential"
    sequential_agents = ["plain", "tuned", "never"]
    retry_attempts = 3
    [orchestration.retry]
    initial_interval_seconds = 0.5
    non_retryable_errors = ["KeyError"]
    [agents.plain]
    handler = "tests.agents:append"
    [agents.tuned]
    handler = "tests.agents:append"
    retry_attempts = 5
    [agents.tuned.retry]
    initial_interval_seconds = 2
    backoff_coefficient = 3
    maximum_interval_seconds = 60
    non_retryable_errors = ["ValueError"]
    [agents.never]
    handler = "tests.agents:append"
    retry_attempts = 0
    """
    config = load_config(write(tmp_path, text))
    assert config.max_attempts("plain") == 4
    assert config.max_attempts("tuned") == 6
    assert config.max_attempts("never") == 1
    assert config.retry_settings("plain").initial_interval_seconds == 0.5
    assert config.retry_settings("plain").non_retryable_errors == ["KeyError"]
    tuned = config.retry_settings("tuned")
    assert (tuned.initial_interval_seconds, tuned.backoff_coefficient) == (2, 3)
    assert (tuned.maximum_interval_seconds, tuned.non_retryable_errors) == (60, ["ValueError"])


def test_bad_retry_settings(tmp_path: Path) -> None:
    text = ORCH_SEQ + "[agents.a.retry]\nbackoff_coefficient = 0.5\ninitial_interval_seconds = 0\n"
    message = error(tmp_path, text)
    assert "agents.a.retry.backoff_coefficient: Input should be greater than or equal to 1" in (
        message
    )
    assert "agents.a.retry.initial_interval_seconds: Input should be greater than 0" in message


def test_wrong_types_name_the_key(tmp_path: Path) -> None:
    text = ORCH_SEQ.replace('sequential_agents = ["a"]', 'sequential_agents = "a"')
    message = error(tmp_path, text)
    assert "orchestration.sequential_agents: Input should be a valid list" in message
