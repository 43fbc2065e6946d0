"""Hostile input: what Temporal cannot take is refused before it is sent, with one clear line.

Property tests (hypothesis) over the three doors data comes in by: the config loader, the CLI's
``--input`` parser and agent outputs. Each checks "refused with a clear message, or it reaches
Temporal unchanged", against an oracle written here, not the code under test. Then one example
test per case named in issue 12, and a guard that every number in the config is bounded.
"""

from __future__ import annotations

import io
import json
import math
import sys
import types
import typing
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Union

import pytest
from annotated_types import Ge, Gt, Le, Lt
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo
from temporalio.api.common.v1 import RetryPolicy as RetryPolicyProto
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from agentflow import FlowFailedError, FlowResult
from agentflow.activities.agent import output_state
from agentflow.cli._common import read_input
from agentflow.cli.main import _service_message
from agentflow.client.sessions import new_event
from agentflow.config import FlowConfig, load_config, parse_config
from agentflow.config._base import BOUNDING_VALIDATORS
from agentflow.config.memory import ZERO_IS_UNSET
from agentflow.errors import ConfigError
from agentflow.limits import INT32_MAX, MAX_DATA_DEPTH, MAX_DURATION_SECONDS, MIN_DURATION_SECONDS
from agentflow.models.flow import AgentOutput, Event, State
from agentflow.workflows._calls import retry_policy
from tests.conftest import cli, flow_config, flow_runner

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

# Modest: the whole module stays well under a minute on two busy cores.
PROPERTY = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])  # fmt: skip

BASE_CONFIG: dict[str, Any] = {
    "agent_flow": {"name": "hostile"},
    "orchestration": {"mode": "sequential", "sequential_agents": ["a"]},
    "agents": {"a": {"handler": "tests.agents:noop"}},
}


# ---------------------------------------------------------------- handlers used by the runs


def nan_output(event: Event, state: State) -> dict[str, Any]:
    return {"scores": [1.0, float("nan")]}


def meta_not_a_string(event: Event, state: State) -> State:
    return State.model_validate({"meta": {"route": 1}})


def five_megabyte_error(event: Event, state: State) -> None:
    raise ValueError("x" * 5_000_000)


# ---------------------------------------------------------------- the guard


def _models(
    model: type[BaseModel], path: str = "", seen: frozenset[type] = frozenset()
) -> typing.Iterator[tuple[str, type[BaseModel]]]:
    """Every model reachable from ``model``, once per path; a recursive field (a nested
    flow's FlowConfig) is not walked again."""
    yield path, model
    for name, field in model.model_fields.items():
        for inner in _inner_types(field.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                yield from _models(inner, f"{path}{name}.", seen | {model})


def _inner_types(annotation: Any) -> typing.Iterator[Any]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        yield from _inner_types(typing.get_args(annotation)[0])
    elif origin in (Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            yield from _inner_types(arg)
    else:
        yield annotation


def _scalar_fields() -> list[tuple[str, type, list[Any]]]:
    """Every int, float and bool field of FlowConfig: (key path, type, its constraints)."""
    found = []
    for path, model in _models(FlowConfig):
        for name, field in model.model_fields.items():
            for kind, metadata in _scalars(field.annotation, list(field.metadata)):
                found.append((f"{path}{name}", kind, metadata))
    return found


def _scalars(annotation: Any, metadata: list[Any]) -> typing.Iterator[tuple[type, list[Any]]]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *extra = typing.get_args(annotation)
        yield from _scalars(base, metadata + extra)
    elif origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _scalars(arg, metadata)
    elif annotation in (bool, int, float):
        flat: list[Any] = []
        for item in metadata:
            flat += item.metadata if isinstance(item, FieldInfo) else [item]
        yield annotation, flat


def test_every_config_model_is_strict() -> None:
    for path, model in _models(FlowConfig):
        config = model.model_config
        assert config.get("strict") is True, path or "FlowConfig"
        assert config.get("allow_inf_nan") is False, path or "FlowConfig"
        assert config.get("extra") == "forbid", path or "FlowConfig"


def test_every_number_in_the_config_is_bounded_for_temporal() -> None:
    """The guard: a new numeric field without both bounds (or one of the bounding types of
    agentflow/config/_base.py) fails here, before it can fail a workflow task."""
    numbers = [(path, kind, meta) for path, kind, meta in _scalar_fields() if kind is not bool]
    assert len(numbers) >= 15  # the walk really reaches the nested tables
    for path, kind, metadata in numbers:
        validators = [m.func for m in metadata if isinstance(m, AfterValidator)]
        bounded_by_type = any(func in BOUNDING_VALIDATORS for func in validators)
        low = [m for m in metadata if isinstance(m, Ge | Gt)]
        high = [m for m in metadata if isinstance(m, Le | Lt)]
        assert bounded_by_type or (low and high), f"{path} has no lower and upper bound"
        if kind is int:
            assert high and max(getattr(m, "le", getattr(m, "lt", 0)) for m in high) <= INT32_MAX
        if path.endswith("_seconds"):
            assert kind is float and bounded_by_type, f"{path} must be a Seconds duration"


# ---------------------------------------------------------------- property: the config loader


class Token(str):
    """A TOML value written as is (``1e400``, ``nan``, ``-inf``)."""


def _toml(value: Any) -> str:
    """A TOML value: inline tables and arrays, so one line per top-level key is enough."""
    if isinstance(value, Token):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _with(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``raw`` with ``path`` (dots; ``agents.`` goes to agent a) set."""
    raw = json.loads(json.dumps(raw))
    parts = path.split(".")
    if parts[0] == "agents":
        parts.insert(1, "a")
    table = raw
    for part in parts[:-1]:
        table = table.setdefault(part, {})
    table[parts[-1]] = value
    return raw


SCALAR_PATHS = [(path, kind) for path, kind, _ in _scalar_fields()]
hostile_scalars = st.one_of(
    st.floats(),  # NaN, infinities, subnormals, 1e308
    st.integers(min_value=-(2**65), max_value=2**65),
    st.booleans(),
    st.text(alphabet="abc 0123456789.yes", max_size=6),
    st.sampled_from(
        ["1e400", "-1e400", "1e-400", "nan", "+inf", "0x7fffffff", "1_000", "1" + "0" * 400]
    ).map(Token),
)


# Keys where AgenticGoKit's ``0`` means "not set" (config/_base.py zero_means_default).
ZERO_MEANS_DEFAULT = {"timeout_seconds", "max_concurrent_agents", "max_size",
                      *ZERO_IS_UNSET}  # fmt: skip


def _loaded(config: FlowConfig, path: str) -> Any:
    loaded: Any = config
    parts = path.split(".")
    if parts[0] == "agents":
        parts.insert(1, "a")
    for part in parts:
        loaded = loaded[part] if isinstance(loaded, dict) else getattr(loaded, part)
    return loaded


def _without(path: str) -> dict[str, Any]:
    """BASE_CONFIG with ``path``'s table present (as the file has it) but the key left out."""
    raw = _with(BASE_CONFIG, path, None)
    parts = path.split(".")
    if parts[0] == "agents":
        parts.insert(1, "a")
    table = raw
    for part in parts[:-1]:
        table = table[part]
    del table[parts[-1]]
    return raw


def _accepted_unchanged(config: FlowConfig, path: str, kind: type, value: Any) -> None:
    if isinstance(value, Token):
        value = tomllib.loads(f"v = {value}")["v"]
    assert type(value) is kind or (kind is float and type(value) is int), (path, value)
    if value == 0 and path.rsplit(".", 1)[-1] in ZERO_MEANS_DEFAULT:
        value = _loaded(parse_config(_without(path)), path)  # as if the key were left out
    assert _loaded(config, path) == value


def _temporal_takes(config: FlowConfig) -> None:
    """What the workflows build from the config is valid for Temporal."""
    for name in config.agents:
        policy = retry_policy(config.retry_settings(name), config.max_attempts(name))
        policy.apply_to_proto(RetryPolicyProto())  # int32 attempts, sane intervals
    for path, kind, _ in _scalar_fields():
        if path.endswith("_seconds"):
            for model in _owners(config, path):
                seconds = getattr(model, path.rsplit(".", 1)[-1])
                if seconds is not None:
                    assert MIN_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS, path
                    assert timedelta(seconds=seconds) > timedelta(0)
        elif kind is int:
            for model in _owners(config, path):
                number = getattr(model, path.rsplit(".", 1)[-1])
                assert number is None or abs(number) <= INT32_MAX, path


def _owners(config: FlowConfig, path: str) -> list[Any]:
    """The model instances that hold the field at ``path`` (every agent for agents.*)."""
    current: list[Any] = [config]
    for part in path.split(".")[:-1]:
        nxt: list[Any] = []
        for item in current:
            value = getattr(item, part, None)
            if isinstance(value, dict):
                nxt += list(value.values())
            elif isinstance(value, list):  # [[mcp.servers]]
                nxt += value
            elif value is not None:
                nxt.append(value)
        current = nxt
    return current


@PROPERTY
@given(field=st.sampled_from(SCALAR_PATHS), value=hostile_scalars)
@example(field=("logging.max_size", int), value=0.0)  # a count: 0.0 is a wrong type
@example(field=("logging.max_size", int), value=0)  # AgenticGoKit's "not set"
@example(field=("runtime.timeout_seconds", float), value=Token("1e-400"))  # 0.0: "not set"
@example(field=("llm.timeout_seconds", float), value=0.0)  # a table the base config lacks
def test_config_numbers_are_refused_or_taken_by_temporal(
    tmp_path_factory: pytest.TempPathFactory, field: tuple[str, type], value: Any
) -> None:
    path, kind = field
    file = tmp_path_factory.mktemp("toml") / "agentflow.toml"
    raw = _with(BASE_CONFIG, path, value)
    file.write_text("".join(f"{key} = {_toml(table)}\n" for key, table in raw.items()))
    try:
        config = load_config(file)
    except ConfigError as err:
        message = str(err)
        assert all(line.startswith(f"{file}: ") for line in message.splitlines())
        top = path.split(".")[0]
        assert top in message or "invalid TOML" in message, message
        return
    _accepted_unchanged(config, path, kind, value)
    _temporal_takes(config)


# ---------------------------------------------------------------- property: --input JSON


texts = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


def _must_refuse(value: Any, depth: int = 1) -> bool:
    """The oracle: NaN or infinite numbers, lone surrogates, non-string keys, or too deep."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, dict):
        if depth > MAX_DATA_DEPTH:
            return True
        return any(not isinstance(k, str) or _must_refuse(k) for k in value) or any(
            _must_refuse(v, depth + 1) for v in value.values()
        )
    if isinstance(value, list):
        return depth > MAX_DATA_DEPTH or any(_must_refuse(v, depth + 1) for v in value)
    return False


def _round_trip(value: Any, kind: Any) -> Any:
    converter = pydantic_data_converter.payload_converter
    return converter.from_payloads(converter.to_payloads([value]), [kind])[0]


def _nested(depth: int) -> dict[str, Any]:
    inner: Any = []
    for _ in range(depth - 2):
        inner = [inner]
    return {"deep": inner}  # the dict is level 1, the innermost list level ``depth``


def _one_line_refusal(err: ConfigError) -> str:
    message = str(err)
    assert message.startswith("--input: ")
    assert "\n" not in message
    message.encode("utf-8")  # printable: lone surrogates are quoted escaped
    return message


@PROPERTY
@given(data=st.dictionaries(texts, json_values, max_size=5), ascii_only=st.booleans())
def test_input_json_is_refused_or_reaches_temporal_unchanged(
    data: dict[str, Any], ascii_only: bool
) -> None:
    text = json.dumps(data, ensure_ascii=ascii_only)  # NaN, Infinity, \ud800 and all
    try:
        parsed = read_input(text)
    except ConfigError as err:
        _one_line_refusal(err)
        assert _must_refuse(data), (data, str(err))
        return
    assert not _must_refuse(data)
    assert parsed == data
    assert _round_trip(parsed, dict[str, Any]) == data


@PROPERTY
@given(depth=st.integers(min_value=2, max_value=400))
def test_input_nesting_is_refused_past_the_limit(depth: int) -> None:
    text = json.dumps(_nested(depth))
    if depth <= MAX_DATA_DEPTH:
        assert _round_trip(read_input(text), dict[str, Any]) == _nested(depth)
    else:
        with pytest.raises(ConfigError) as raised:
            read_input(text)
        assert f"nested more than {MAX_DATA_DEPTH} levels" in _one_line_refusal(raised.value)


@PROPERTY
@given(content=st.binary(max_size=64))
def test_input_files_of_any_bytes_give_data_or_one_line(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    file = tmp_path_factory.mktemp("input") / "input.json"
    file.write_bytes(content)
    try:
        data = read_input(f"@{file}")
    except ConfigError as err:
        _one_line_refusal(err)
    else:
        assert isinstance(data, dict)


# ---------------------------------------------------------------- property: agent outputs


outputs = st.dictionaries(st.one_of(texts, st.integers()), json_values, max_size=5)


@PROPERTY
@given(result=outputs, agent=st.sampled_from(["writer", "a-b", "x" * 200]))
def test_agent_output_is_refused_at_once_or_reaches_temporal_unchanged(
    result: dict[Any, Any], agent: str
) -> None:
    try:
        state = output_state(agent, State(), result)
    except ApplicationError as err:
        assert err.non_retryable and err.type == "AgentOutputError"
        assert err.message.startswith(f"agent {agent!r} returned state.data")
        assert "\n" not in err.message
        err.message.encode("utf-8")
        assert _must_refuse(result)
        return
    assert not _must_refuse(result)
    assert state.data == result
    now = datetime.now(timezone.utc)
    output = AgentOutput(state=state, started_at=now, ended_at=now, attempt=1)
    assert _round_trip(output, AgentOutput).state == state


@PROPERTY
@given(meta=st.dictionaries(texts, st.one_of(texts, st.integers(), st.none()), max_size=3))
def test_agent_meta_must_be_strings(meta: dict[str, Any]) -> None:
    returned = State.model_construct(data={}, meta=meta, context={})  # as if mutated later
    try:
        state = output_state("router", State(), returned)
    except ApplicationError as err:
        assert err.non_retryable and "\n" not in err.message
        assert err.message.startswith("agent 'router' returned state.meta")
        assert any(not isinstance(v, str) or _must_refuse(k) or _must_refuse(v)
                   for k, v in meta.items())  # fmt: skip
        return
    assert state.meta == meta
    assert _round_trip(state, State) == state


# ---------------------------------------------------------------- examples: config


AGENT = '[agents.a]\nhandler = "tests.agents:noop"\n'
ORCH = '[orchestration]\nmode = "sequential"\nsequential_agents = ["a"]\n'


def _refusal(tmp_path: Path, text: str) -> str:
    file = tmp_path / "agentflow.toml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(file)
    return str(raised.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("timeout_seconds = 1e300", "agents.a.timeout_seconds: Input should be at most 315360000"),
        ("timeout_seconds = inf", "agents.a.timeout_seconds: Input should be a finite number"),
        ("timeout_seconds = 1e400", "agents.a.timeout_seconds: Input should be a finite number"),
        ("timeout_seconds = nan", "agents.a.timeout_seconds: Input should be a finite number"),
        ("timeout_seconds = 1e-9", "agents.a.timeout_seconds: Input should be at least 0.001"),
        (
            "retry_attempts = 2147483647",
            "agents.a.retry_attempts: Input should be less than or equal to 2147483646",
        ),
        ('enabled = "yes"', "agents.a.enabled: Input should be a valid boolean (got 'yes')"),
        ("timeout_seconds = true", "agents.a.timeout_seconds: Input should be a valid number"),
        ('timeout_seconds = "60"', "agents.a.timeout_seconds: Input should be a valid number"),
    ],
)
def test_agent_numbers_temporal_cannot_take(tmp_path: Path, line: str, expected: str) -> None:
    assert expected in _refusal(tmp_path, ORCH + AGENT + line + "\n")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            "max_iterations = true",
            "orchestration.max_iterations: Input should be a valid integer (got True)",
        ),
        ("timeout_seconds = 1e12", "orchestration.timeout_seconds: Input should be at most"),
        (
            "[orchestration.retry]\ninitial_interval_seconds = 1e300",
            "orchestration.retry.initial_interval_seconds: Input should be at most",
        ),
        (
            "[orchestration.retry]\nmaximum_interval_seconds = inf",
            "orchestration.retry.maximum_interval_seconds: Input should be a finite number",
        ),
        (
            "[orchestration.retry]\nbackoff_coefficient = 1e300",
            "orchestration.retry.backoff_coefficient: Input should be less than or equal to 100",
        ),
        (
            "[orchestration.retry]\ninitial_interval_seconds = 60",
            "orchestration.retry.maximum_interval_seconds: 30 is less than "
            "initial_interval_seconds (60)",
        ),
    ],
)
def test_orchestration_numbers_temporal_cannot_take(
    tmp_path: Path, lines: str, expected: str
) -> None:
    assert expected in _refusal(tmp_path, ORCH + lines + "\n" + AGENT)


def test_sessions_idle_timeout_is_a_duration(tmp_path: Path) -> None:
    message = _refusal(tmp_path, ORCH + AGENT + "[sessions]\nidle_timeout_seconds = 1e-9\n")
    assert "sessions.idle_timeout_seconds: Input should be at least 0.001 seconds" in message


def test_agent_name_longer_than_an_activity_id_allows(tmp_path: Path) -> None:
    name = "n" * 10_000
    orchestration = ORCH.replace('["a"]', json.dumps([name]))
    text = f'{orchestration}[agents.{name}]\nhandler = "x:y"\n'
    message = _refusal(tmp_path, text)
    assert "is 10000 bytes; at most 200 bytes (it goes into Temporal activity ids" in message
    assert len(message) < 400  # the name is not repeated in full


def test_flow_name_longer_than_a_search_attribute_allows(tmp_path: Path) -> None:
    message = _refusal(tmp_path, f'[agent_flow]\nname = "{"é" * 1100}"\n' + ORCH + AGENT)
    assert "agent_flow.name: is 2200 bytes; at most 200" in message


def test_task_queue_longer_than_temporal_allows(tmp_path: Path) -> None:
    text = ORCH + AGENT + f'[temporal]\ntask_queue = "{"q" * 1001}"\n'
    assert "temporal.task_queue: is 1001 bytes; at most 1000 bytes" in _refusal(tmp_path, text)


def test_settings_too_large_for_every_workflow_input(tmp_path: Path) -> None:
    text = ORCH + AGENT + f'system_prompt = "{"p" * 300_000}"\n'
    assert "at most 256 KB, since they travel in every workflow input" in _refusal(tmp_path, text)


@pytest.mark.parametrize(
    "value", ["[" * 10_000 + "]" * 10_000, "{a = " * 3_000 + "1" + "}" * 3_000]
)
def test_deeply_nested_toml_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    file = tmp_path / "agentflow.toml"
    file.write_text(ORCH + AGENT + f"capabilities = {value}\n")
    from agentflow.cli.main import main

    assert main(["validate", "--config", str(file)]) == 2
    err = capsys.readouterr().err
    assert err == f"agentflow: error: {file}: arrays or inline tables nested too deeply to read " \
                  "(keep it to a few levels)\n"  # fmt: skip


def test_module_that_exits_at_import_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = f"exits_at_import_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("import sys\nsys.exit(3)\n")
    file = tmp_path / "agentflow.toml"
    file.write_text(ORCH + f'[agents.a]\nhandler = "{module}:run"\n')
    from agentflow.cli.main import main

    assert main(["validate", "--config", str(file)]) == 2
    err = capsys.readouterr().err
    assert f"agents.a.handler: cannot import module '{module}'" in err
    assert "it called sys.exit(3) while being imported" in err


# ---------------------------------------------------------------- examples: --input


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": {"b": [1, NaN]}}', "--input: a.b[1]: NaN is not a finite number"),
        ('{"a": Infinity}', "--input: a: Infinity is not a finite number"),
        ('{"a": -Infinity}', "--input: a: -Infinity is not a finite number"),
        ('{"a": 1e400}', "--input: a: 1e400 is not a finite number"),
        ('{"odd key": "\\ud800"}', '--input: ["odd key"]: text holds a lone surrogate (\\ud800)'),
        ('{"k\\udcff": 1}', "--input: (top level): a key holds a lone surrogate (\\udcff)"),
        ('{"a": ' + "[" * 10_000 + "]" * 10_000 + "}", "--input: the value is nested too deeply"),
        ('{"a": ' + "1" * 5000 + "}", "--input: the value holds an integer too long to read"),
    ],
)
def test_input_values_that_would_change_or_fail(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        read_input(text)
    assert _one_line_refusal(raised.value).startswith(expected)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"a": "café"}'.encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 10)"),
        ('{"a": "café"}'.encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
        ('{"a": "café"}'.encode("utf-16-be"), "is not UTF-8 text (byte 0xe9 at offset 21)"),
    ],
)
def test_input_files_that_are_not_utf8(tmp_path: Path, content: bytes, expected: str) -> None:
    file = tmp_path / "input.json"
    file.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        read_input(f"@{file}")
    assert expected in _one_line_refusal(raised.value)


def test_standard_input_that_is_not_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO('{"a": "café"}'.encode("latin-1"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw, encoding="utf-8"))
    with pytest.raises(ConfigError) as raised:
        read_input("@-")
    assert _one_line_refusal(raised.value) == (
        "--input: standard input is not UTF-8 text (byte 0xe9 at offset 10); save it as UTF-8"
    )


def test_emitted_event_data_is_checked_too() -> None:
    config = parse_config(BASE_CONFIG)
    with pytest.raises(ConfigError) as raised:
        new_event(config, {"reading": {"value": math.inf}})
    assert str(raised.value).startswith("--input: reading.value: inf is not a finite number")


def test_input_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    file = tmp_path / "input.json"
    file.write_bytes('{"a": "café"}'.encode("utf-8-sig"))
    assert read_input(f"@{file}") == {"a": "café"}


async def test_run_refuses_ids_temporal_cannot_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "agentflow.toml"
    file.write_text(ORCH + AGENT)
    code, _, err = await cli(capsys, "run", "--config", str(file), "--session", "s" * 3000)
    assert (code, err) == (2, "agentflow: error: --session: 3000 bytes; at most 256 (it becomes "
                              "part of a Temporal workflow id and search attribute)\n")  # fmt: skip
    code, _, err = await cli(capsys, "run", "--config", str(file), "--workflow-id", "w" * 2000)
    assert (code, err) == (2, "agentflow: error: --workflow-id: 2000 bytes; at most 1000 "
                              "(Temporal's limit for workflow ids)\n")  # fmt: skip


# ---------------------------------------------------------------- examples: agent outputs


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (_nested(10_000), "returned state.data.deep[0][0][0][0][0]…(91 more)…[0][0][0]: nested "
                          "more than 100 levels deep"),
        ({"text": "ok \udc80"}, "returned state.data.text: text holds a lone surrogate (\\udc80)"),
        ({3: "three"}, "returned state.data: key 3 is not a string"),
        ({"x": -math.inf}, "returned state.data.x: -inf is not a finite number"),
    ],
)  # fmt: skip
def test_agent_outputs_json_would_change(result: dict[Any, Any], expected: str) -> None:
    with pytest.raises(ApplicationError) as raised:
        output_state("writer", State(), result)
    err = raised.value
    assert (err.type, err.non_retryable) == ("AgentOutputError", True)
    assert err.message.startswith(f"agent 'writer' {expected}")


# ---------------------------------------------------------------- examples: messages and runs


def test_only_connection_failures_suggest_starting_temporal() -> None:
    too_big = RPCError("Blob data size exceeds limit.", RPCStatusCode.INVALID_ARGUMENT, b"")
    assert _service_message(too_big) == "Blob data size exceeds limit."
    down = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
    assert "is Temporal running?" in _service_message(down)
    assert "is Temporal running?" in _service_message(ConnectionRefusedError("refused"))


async def test_workflow_id_of_a_running_run(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "agentflow.toml"
    address = client.service_client.config.target_host
    file.write_text(ORCH + AGENT + f'[temporal]\naddress = "{address}"\ntask_queue = "none"\n')
    workflow_id = f"taken-{uuid.uuid4().hex[:8]}"
    argv = ("run", "--config", str(file), "--workflow-id", workflow_id, "--no-wait")
    assert (await cli(capsys, *argv))[0] == 0  # no worker: the run stays running
    try:
        code, _, err = await cli(capsys, *argv)
        assert code == 2
        assert err == (
            f"agentflow: error: --workflow-id: '{workflow_id}' is taken by a running "
            "SequentialFlow run; choose another id, or leave --workflow-id out for a generated "
            "one\n"
        )
    finally:
        await client.get_workflow_handle(workflow_id).terminate("test over")


async def _failed_at_once(client: Client, handler: str) -> tuple[str, FlowResult]:
    config = flow_config("sequential", {"x": f"tests.test_hostile_input:{handler}"},
                         sequential_agents=["x"], retry_attempts=3)  # fmt: skip
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await runner.run({})
    result = raised.value.result
    [agent] = result.results
    assert (agent.status, agent.attempt) == ("failed", 1)  # not retried: no retry can fix it
    return str(raised.value), result


async def test_nan_in_agent_output_fails_the_agent_at_once(client: Client) -> None:
    message, _ = await _failed_at_once(client, "nan_output")
    assert "agent 'x' returned state.data.scores[1]: nan is not a finite number" in message


async def test_state_with_non_string_meta_fails_at_once_in_one_line(client: Client) -> None:
    message, result = await _failed_at_once(client, "meta_not_a_string")
    assert "AgentOutputError: agent 'x' built an invalid State: meta.route: Input should be a " \
           "valid string (got 1)" in message  # fmt: skip
    assert "\n" not in (result.results[0].error or "")


async def test_huge_exception_message_is_cut_not_a_timeout(client: Client) -> None:
    config = flow_config("sequential", {"x": "tests.test_hostile_input:five_megabyte_error"},
                         sequential_agents=["x"], retry_attempts=0)  # fmt: skip
    async with flow_runner(client, config) as runner:
        with pytest.raises(FlowFailedError) as raised:
            await runner.run({})
    error = raised.value.result.results[0].error or ""
    assert error.startswith("ValueError: xxxx")
    assert error.endswith("(cut; 5,000,000 characters in all)")
    assert "timeout" not in error.lower()
