"""``agentflow memory ingest|search|stats|forget``: a flow's agent memory from the command line.

``ingest`` runs on the flow's worker (agentflow/client/memory.py starts it; the worker holds
the store); ``search``, ``stats`` and ``forget`` open the store themselves through
``agentflow.memory``, so they need no worker, only the flow's ``[agent_memory]`` table.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from agentflow.cli._common import EXIT_FAILED, EXIT_OK, print_json
from agentflow.client import telemetry, visibility
from agentflow.client.connection import connect_flow
from agentflow.client.memory import IngestHandle, plan_ingest, start_ingest
from agentflow.config import DEFAULT_CONFIG_FILE, FlowConfig, load_config
from agentflow.errors import ConfigError
from agentflow.memory import Hit, MemoryStats, forget, memory_of, search, stats
from agentflow.memory.web import is_url
from agentflow.models.memory import IngestProgress, IngestResult
from agentflow.names import MEMORY_TURN_SOURCE_PREFIX

EXCERPT_CHARS = 100


def add_commands(commands: Any) -> None:
    """Register ``memory ingest|search|stats|forget`` on main.py's subparsers."""
    group = commands.add_parser("memory", help="ingest files into a flow's memory, search it")
    sub = group.add_subparsers(dest="memory_command", required=True, metavar="COMMAND")

    cmd = sub.add_parser("ingest", help="chunk, embed and store files in the knowledge base")
    cmd.add_argument("paths", nargs="+", metavar="PATH",
                     help="files, directories, and web pages (http(s)://, with "
                          "[agent_memory.documents] enable_url_scraping = true)")  # fmt: skip
    _config_flag(cmd)
    cmd.add_argument("--task-queue", help="override [temporal] task_queue")
    cmd.add_argument("--no-wait", action="store_true", help="print the id and return")
    cmd.set_defaults(func=_ingest)

    cmd = sub.add_parser("search", help="the knowledge base's best chunks for a query")
    cmd.add_argument("query")
    _config_flag(cmd)
    cmd.add_argument("--limit", type=int, help="at most this many (default: max_results)")
    cmd.add_argument("--session", help="search this session's memory instead")
    cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    cmd.set_defaults(func=_search)

    cmd = sub.add_parser("stats", help="records per scope and source")
    _config_flag(cmd)
    cmd.add_argument("--json", action="store_true", help="print exactly one JSON object")
    cmd.set_defaults(func=_stats)

    cmd = sub.add_parser("forget", help="delete a source's records or a session's memory")
    cmd.add_argument("source", nargs="?", help="a path or URL as ingested, or agent:NAME")
    _config_flag(cmd)
    cmd.add_argument("--session", help="only this session's memory (alone: all of it)")
    cmd.set_defaults(func=_forget)


def _config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG_FILE,
                        help="the flow's agentflow.toml (its [agent_memory] table)")  # fmt: skip


def _memory_config(args: argparse.Namespace, *, local: bool = False) -> FlowConfig:
    """The flow's config, with an [agent_memory] table (exit 2 otherwise, before any I/O).
    ``local``: the command opens the store in this process, which for ``provider = "memory"``
    is not the worker's."""
    config = load_config(args.config, check_handlers=False)
    if memory_of(config).provider == "memory" and local:
        _warn('provider = "memory" keeps records in each process: this command sees its own '
              "empty store, not a worker's (use sqlite or pgvector to share them)")  # fmt: skip
    return config


# --- ingest ----------------------------------------------------------------------------------


def _ingest(args: argparse.Namespace) -> int:
    config = _memory_config(args)
    return asyncio.run(_ingest_files(config, args))


async def _ingest_files(config: FlowConfig, args: argparse.Namespace) -> int:
    plan = await plan_ingest(config, args.paths)  # bad paths and files: exit 2, before connecting
    client = await connect_flow(config, telemetry.interceptors(config.telemetry))
    handle = await start_ingest(client, config, plan, task_queue=args.task_queue)
    for left in handle.left_out:
        _warn(f"left out {left.error}")
    count = f"{len(handle.files)} file{'s' if len(handle.files) != 1 else ''}"
    if not await visibility.has_workers(client, handle.task_queue):
        _warn(f"no worker polls task queue {handle.task_queue!r}; the ingestion waits until "
              f"one of flow {config.name!r} starts (agentflow worker --config ...)")  # fmt: skip
    if args.no_wait:
        print(f"started ingestion of {count}: {handle.workflow_id}\n  {handle.ui_url}")
        return EXIT_OK
    print(f"ingesting {count} into the memory of flow {config.name!r}: {handle.workflow_id}\n"
          f"  {handle.ui_url}", flush=True)  # fmt: skip
    result = await _wait(handle)
    for failure in result.failures:
        print(f"✗ {failure.path}: {failure.error}")
    print(summary(result))
    return EXIT_FAILED if result.failures else EXIT_OK


async def _wait(handle: IngestHandle) -> IngestResult:
    """The result, with progress on stderr: one line rewritten in a terminal, else a line
    each time a file is done."""
    tty = sys.stderr.isatty()
    files_done = [0]

    def show(progress: IngestProgress) -> None:
        live = progress.live()
        line = (f"ingesting: {live.files_done}/{live.files_total} files, {live.stored} chunks "
                f"stored, {live.skipped} already stored")  # fmt: skip
        if tty:
            current = "".join(f", {Path(r.path).name} {r.done}/{r.chunks}"
                              for r in progress.running)  # fmt: skip
            sys.stderr.write(f"\r\x1b[2K{line}{current}")
            sys.stderr.flush()
        elif live.files_done != files_done[0]:
            files_done[0] = live.files_done
            print(line, file=sys.stderr, flush=True)

    result = await handle.result(show)
    if tty:
        sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()
    return result


def summary(result: IngestResult) -> str:
    """The last line of ``memory ingest``."""
    ingested = result.files_done - result.files_failed
    files = f"{ingested} of {result.files_total} files" if result.failures else (
        f"{ingested} file{'s' if ingested != 1 else ''}")  # fmt: skip
    failed = f"; {result.files_failed} failed" if result.failures else ""
    return (f"ingested {files} into the memory of flow {result.flow!r}: {result.chunks} "
            f"chunks, {result.stored} stored, {result.skipped} already stored{failed}")  # fmt: skip


def _warn(message: str) -> None:
    print(f"agentflow: warning: {message}", file=sys.stderr, flush=True)


# --- search, stats, forget -------------------------------------------------------------------


def _search(args: argparse.Namespace) -> int:
    config = _memory_config(args, local=True)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit: must be at least 1, got {args.limit}")
    if not args.query.strip():
        raise ConfigError("memory search: the query is empty")
    hits = asyncio.run(search(config, args.query, k=args.limit, session_id=args.session))
    for rank, hit in enumerate(hits, 1):
        if args.json:
            print_json({"rank": rank, **hit.model_dump(mode="json")})
        else:
            print(format_hit(rank, hit))
    if not hits and not args.json:
        where = f"session {args.session}" if args.session else "the knowledge base"
        print(f"nothing found in {where} of flow {config.name!r}", file=sys.stderr)
    return EXIT_OK


def format_hit(rank: int, hit: Hit) -> str:
    text = " ".join(hit.text.split())
    excerpt = text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
    return f"{rank:>3}  {hit.score:.3f}  {hit.source}:{hit.position}  {excerpt}"


def _stats(args: argparse.Namespace) -> int:
    config = _memory_config(args, local=True)
    found = asyncio.run(stats(config))
    if args.json:
        print_json({"flow": config.name, **found.model_dump(mode="json")})
    else:
        print(format_stats(config.name, found))
    return EXIT_OK


def format_stats(flow: str, found: MemoryStats) -> str:
    lines = [f"memory of flow {flow!r}: {found.provider} at {found.location}, "
             f"{found.dimensions} dimensions, {found.records} records"]  # fmt: skip
    lines += [f"  {scope}: {count} records" for scope, count in sorted(found.scopes.items())]
    if found.sources:
        lines.append("sources:")
        width = max(len(str(s.chunks)) for s in found.sources)
        lines += [f"  {s.chunks:>{width}}  {s.scope}  {s.source}" for s in found.sources]
    return "\n".join(lines)


def _forget(args: argparse.Namespace) -> int:
    config = _memory_config(args, local=True)
    if args.source is None and args.session is None:
        raise ConfigError("memory forget: give a SOURCE (a path as ingested), --session ID, "
                          "or both")  # fmt: skip
    source = source_name(args.source) if args.source is not None else None
    count = asyncio.run(forget(config, source=source, session_id=args.session))
    what = " of ".join(x for x in (source, f"session {args.session}" if args.session else "") if x)
    if count:
        print(f"forgot {count} record{'s' if count != 1 else ''} of {what}")
    else:
        print(f"no records of {what} in the memory of flow {config.name!r} "
              "(agentflow memory stats lists the sources)")  # fmt: skip
    return EXIT_OK


def source_name(source: str) -> str:
    """A source as stored: ``agent:NAME`` as given, a path made absolute as ``memory ingest``
    made it (so ``forget docs/a.md`` forgets what ``ingest docs`` stored), a URL as given."""
    if source.startswith(MEMORY_TURN_SOURCE_PREFIX) or not source.strip() or is_url(source):
        return source
    return str(Path(source).expanduser().resolve())
