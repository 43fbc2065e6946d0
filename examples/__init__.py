"""Example agents and flows; the top-level agentflow.toml uses them."""
