"""The flow files the soak serves, written into its folder: one per mode, the sessions' flow,
two bus files (an ordered subscriber in the second), an approval flow, an LLM agent with a
tool, and the long conversation twice (without and with a ``[payloads]`` store)."""

from __future__ import annotations

from pathlib import Path

# Every handler agent: a dead worker's call is retried after 10 s (timeout = heartbeat
# timeout); LLM agents get 30 s (a model request on a loaded machine takes seconds).
COMMON = """
[orchestration.retry]
initial_interval_seconds = 0.2
maximum_interval_seconds = 2
"""


def _agents(names: list[str], handler: str = "soak.agents:step", extra: str = "") -> str:
    return "".join(f'\n[agents.{name}]\nhandler = "{handler}"\ntimeout_seconds = 10\n{extra}'
                   for name in names)  # fmt: skip


def _flow(name: str, orchestration: str, agents: str, tail: str = "") -> str:
    return (f'[agent_flow]\nname = "{name}"\n\n[orchestration]\n{orchestration}\n'
            f"timeout_seconds = 600\nretry_attempts = 10\n{COMMON}{agents}{tail}")  # fmt: skip


MODES = {
    "sequential": _flow(
        "soak-sequential",
        'mode = "sequential"\nsequential_agents = ["a", "b", "c"]',
        _agents(["a", "b", "c"]),
    ),
    "route": _flow(
        "soak-route",
        'mode = "route"\nentry_agent = "triage"\nmax_hops = 5',
        _agents(["triage"], "soak.agents:triage") + _agents(["finish"]),
    ),
    "collaborative": _flow(
        "soak-collaborative",
        'mode = "collaborative"\ncollaborative_agents = ["a", "b", "c"]',
        _agents(["a", "b", "c"]),
    ),
    "loop": _flow(
        "soak-loop", 'mode = "loop"\nloop_agent = "a"\nmax_iterations = 5', _agents(["a"])
    ),
    "mixed": _flow(
        "soak-mixed",
        'mode = "mixed"\ncollaborative_agents = ["a", "b"]\nsequential_agents = ["c"]',
        _agents(["a", "b", "c"]),
    ),
}

SESSIONS = _flow(
    "soak-sessions", 'mode = "sequential"\nsequential_agents = ["a", "b"]', _agents(["a", "b"])
)
BUS_A = _flow(
    "soak-bus-a",
    'mode = "route"',
    _agents(["audit"], "soak.agents:heard", 'subscribes = ["soak.*"]\n'),
    '\n[bus]\npublishes = ["soak.*"]\n',
)
BUS_B = _flow(
    "soak-bus-b",
    'mode = "route"',
    _agents(["ordered"], "soak.agents:heard", 'subscribes = ["soak.*"]\nordered = true\n'),
)
APPROVALS = _flow(
    "soak-approvals",
    'mode = "sequential"\nsequential_agents = ["a", "pay"]',
    _agents(["a"]) + _agents(["pay"], extra='approval = "before"\n'),
)


# Bad input (soak/bad.py): a flow whose agent emits to an agent it does not have (its clients
# may publish to soak.bad.* only), and a flow no worker serves (written, never served).
BAD = _flow("soak-bad", 'mode = "sequential"\nsequential_agents = ["stray"]',
            _agents(["stray"], "soak.agents:stray"),
            '\n[bus]\npublishes = ["soak.bad.*"]\n')  # fmt: skip
GHOST = _flow("soak-ghost", 'mode = "sequential"\nsequential_agents = ["a"]', _agents(["a"]))


def llm(base_url: str) -> str:
    return _flow(
        "soak-llm",
        'mode = "sequential"\nsequential_agents = ["ask"]',
        '\n[agents.ask]\nsystem_prompt = "Look the key up, then answer."\n'
        'tools = ["soak.agents:lookup"]\ntimeout_seconds = 30\n',
        f'\n[llm]\nprovider = "ollama"\nmodel = "soak"\nbase_url = "{base_url}"\n',
    )


STORE = Path(__file__).resolve().parent.parent / ".agentflow" / "payloads"


def chat(name: str, base_url: str, payloads: str) -> str:
    return _flow(
        name,
        'mode = "sequential"\nsequential_agents = ["prepare", "chat", "remember"]',
        _agents(["prepare"], "soak.agents:prepare")
        + '\n[agents.chat]\nsystem_prompt = "Answer the last turn."\ntimeout_seconds = 30\n'
        + _agents(["remember"], "soak.agents:remember"),
        f'\n[llm]\nprovider = "ollama"\nmodel = "soak"\nbase_url = "{base_url}"\n'
        + (f"\n[payloads]\n{payloads}\n" if payloads else ""),
    )


def write_flows(folder: Path, base_url: str) -> dict[str, Path]:
    """Every flow file, by a short name."""
    texts = {
        **MODES, "sessions": SESSIONS, "bus-a": BUS_A, "bus-b": BUS_B,
        "approvals": APPROVALS, "llm": llm(base_url), "bad": BAD, "ghost": GHOST,
        "chat": chat("soak-chat", base_url, ""),
        # The default store's folder (every worker's, from its working directory): the bus
        # registry, served by every worker, may be stored by this flow's worker.
        "chat-store": chat("soak-chat-store", base_url, 'storage = "filesystem"\n'
                           f'path = "{STORE}"\nthreshold_bytes = 4096'),
    }  # fmt: skip
    paths = {}
    for name, text in texts.items():
        path = folder / f"{name}.toml"
        path.write_text(text)
        paths[name] = path
    return paths
