"""The soak: the whole runtime at once, for a long time, under the faults production brings.

``make soak`` (``python -m soak``) starts one dev server on a SQLite file, three worker
processes (one of them behind a TCP proxy of the soak's), a fault-injecting fake LLM provider,
and drives flows of every mode, sessions, the bus, approvals, LLM agents with tools and one
long conversation at them, while it SIGKILLs workers, restarts the server and cuts a worker off.
Then it accounts for every event, agent call, tool call and model request, and writes a report
(docs/reliability.md explains the columns). Not part of ``make test``; tests/test_soak.py runs
its accounting at a tiny size.
"""
