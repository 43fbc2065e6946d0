"""The workflows: one per orchestration mode, plus the session, dead-letter and bus-registry
workflows. Deterministic code only; installed as ``agentflow.workflows``.

This file stays empty on purpose: the workflow sandbox re-imports a workflow's module and its
parent package for every new run, so whatever it imported would be imported once per run. The
worker's plugin lists them all (``agentflow.worker.ALL_WORKFLOWS``); their names are in
``agentflow.names``.
"""
