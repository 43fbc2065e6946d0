"""The demo flow that ``agentflow demo`` (and ``make demo``) runs: ``agentflow.toml`` (at the
repository's root; installed here beside its agents), its handlers in ``agents`` (plain-text
analysis, no LLM), and ``input.json``, an article to analyse."""

from importlib.resources import files

DEMO_CONFIG = files(__name__) / "agentflow.toml"
DEMO_INPUT = files(__name__) / "input.json"
