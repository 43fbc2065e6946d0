"""``agentflow dev``: a Temporal dev server in the foreground, until Ctrl-C or SIGTERM.

The server process itself (the binary, its flags, ports, starting and stopping it) lives in
agentflow/worker/devserver_process.py, shared with ``agentflow demo``, the embedded server of a
one-process runner, the tests and the benchmarks.
"""

from __future__ import annotations

import signal

from agentflow.worker.devserver_process import (
    DEFAULT_PORT,
    LOOPBACK,
    UI_PORT_OFFSET,
    DevServer,
    DevServerError,
    stop_signals_interrupt,
)


def serve(server: DevServer) -> int:
    """``agentflow dev``: run ``server`` until we are asked to stop (then 0); the server stops
    with us on every path (a signal, an error). Its own exit is an error (DevServerError)."""
    with stop_signals_interrupt():
        try:
            server.start()
            print_banner(server)
            code = server.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            server.stop()
    raise DevServerError(f"the temporal dev server {_how_it_ended(code)}")


def _how_it_ended(code: int) -> str:
    if code >= 0:
        return f"exited with {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def print_banner(server: DevServer) -> None:
    """What ``agentflow dev`` serves, and what a client needs to find it there."""
    print(f"Temporal dev server: {server.address}  (namespace default)")
    print(f"Temporal UI:         {server.ui_address}")
    if server.port != DEFAULT_PORT or server.ip not in LOOPBACK:
        # Clients and workers connect to localhost:7233 unless told otherwise.
        print(f"Clients and workers: export TEMPORAL_ADDRESS={server.client_address}")
    if server.ui_port != server.port + UI_PORT_OFFSET:
        # Links printed by `agentflow run` assume Temporal's default UI port.
        print(f'Run links:           set [temporal] ui_url = "{server.ui_address}"')
    print(f"Database:            {server.db}")
    # Clients and workers on this machine store payloads over 256 KB there (agentflow/payloads.py).
    print("Large payloads:      .agentflow/payloads/ of each worker and client (README)")
    print("Press Ctrl-C to stop.", flush=True)
