"""The docs are run: generated references match the code, every marked code block of docs/*.md
runs, links resolve, and docs/getting-started.md works from an empty directory.

Markers on a fence's info string (every other block is illustration):
- ``toml file=NAME.toml`` / ``python file=NAME.py``: written into the page's directory, in page
  order; a TOML file with [orchestration] or [agents] must load (load_config, handlers
  checked) and Python must compile.
- ``python run``: run as a script there; ``bash run``: each line run with bash there (exit 0,
  or N when the line ends with ``# exit N``). TEMPORAL_ADDRESS points at a dev server, and once
  the page has written agentflow.toml an ``agentflow worker`` runs in the directory
  (restarted when a file changes, as a user would).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.client import Client

from agentflow.cli.reference import REGENERATE, pages

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
GETTING_STARTED = DOCS / "getting-started.md"
BIN = Path(sys.executable).parent
READY_LINE = "worker on task queue"
FENCE = re.compile(r"^(`{3,})([^`\n]*)\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


@dataclass
class Block:
    lang: str
    file: str | None
    run: bool
    body: str
    line: int


def blocks(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        lang, *marks = match.group(2).split() or [""]
        file = next((mark[5:] for mark in marks if mark.startswith("file=")), None)
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(lang, file, "run" in marks, match.group(3), line))
    return found


def test_reference_pages_are_generated_from_the_code() -> None:
    for relative, text in pages().items():
        path = REPO / relative
        committed = path.read_text(encoding="utf-8") if path.is_file() else ""
        assert committed == text, (
            f"{relative} differs from what the code generates: run `{REGENERATE}` "
            "(or `make docs`) and commit the result"
        )


# --- links, length, words -------------------------------------------------------------------

LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """``text`` without fenced blocks and inline code (their brackets are not links)."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page (a repeated heading gets -1, -2 ...)."""
    found: set[str] = set()
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        repeat = 0
        while (candidate := slug if repeat == 0 else f"{slug}-{repeat}") in found:
            repeat += 1
        found.add(candidate)
    return found


MARKDOWN = [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading with anchor #{anchor} in {path.name}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_readme_is_a_map() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; at most 250 (move text to docs/)"
    commands = [line.split("#")[0].strip() for line in lines if line.startswith("make ")]
    assert commands[:2] == ["make demo", "make test"], commands


def test_no_page_says_seeds() -> None:
    said = [
        f"{page.relative_to(REPO)}:{number}: {line.strip()}"
        for page in MARKDOWN
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bseeds?\b", line, re.IGNORECASE)
    ]
    assert not said, "say what the feature does, not where it came from:\n" + "\n".join(said)


# --- running a page ---------------------------------------------------------------------------


@dataclass
class Page:
    """A page's directory, its dev server's address, and its worker."""

    path: Path
    directory: Path
    address: str
    worker: subprocess.Popen[bytes] | None = None
    worker_files: dict[str, str] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    written: set[str] = field(default_factory=set)  # the files of file= blocks
    checked_files: dict[str, str] | None = None  # the files as the last check_flows saw them

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "TEMPORAL_ADDRESS": self.address, "PYTHONUNBUFFERED": "1",
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip

    def where(self, block: Block) -> str:
        return f"{self.path.relative_to(REPO)}:{block.line}"

    def files(self) -> dict[str, str]:
        """The page's files (not the scripts of its ``python run`` blocks: no flow uses them)."""
        return {p.name: p.read_text() for p in sorted(self.directory.glob("*.*")) if p.is_file()
                and p.suffix in (".py", ".toml", ".json")
                and not p.name.startswith("_block_")}  # fmt: skip

    def ensure_worker(self) -> None:
        if not (self.directory / "agentflow.toml").is_file():
            return
        if self.worker is not None and self.worker_files == self.files():
            return
        self.stop_worker()
        log = self.directory / "worker.log"
        offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            self.worker = subprocess.Popen([str(BIN / "agentflow"), "worker"], cwd=self.directory,
                                           env=self.env, stdout=out, stderr=out)  # fmt: skip
        self.worker_files = self.files()
        deadline = time.monotonic() + 60
        while READY_LINE not in log.read_text(errors="replace")[offset:]:
            if self.worker.poll() is not None or time.monotonic() > deadline:
                self.stop_worker()
                pytest.fail(f"{self.path.name}: agentflow worker did not start:\n"
                            f"{log.read_text(errors='replace')[offset:]}")  # fmt: skip
            time.sleep(0.1)

    def stop_worker(self) -> None:
        if self.worker is not None:
            _stop(self.worker)
            self.worker = None

    def check_flows(self) -> None:
        """Every flow file written so far loads, with its handlers (in a fresh process, so
        that modules of the same name on other pages do not mix). Files unchanged since the
        last check are not loaded again: the same files load the same way."""
        if self.checked_files == (files := self.files()):
            return
        self.checked_files = files
        for toml in sorted(
            self.directory / name for name in self.written if name.endswith(".toml")
        ):
            tables = tomllib.loads(toml.read_text())
            if "orchestration" not in tables and "agents" not in tables:
                continue
            code = ("from agentflow.config import load_config; "
                    f"load_config({toml.name!r}, check_handlers=True)")  # fmt: skip
            done = subprocess.run([sys.executable, "-c", code], cwd=self.directory,
                                  env=self.env, capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, (
                f"{self.path.name}: {toml.name} does not load:\n"
                + (done.stderr.strip().splitlines() or [""])[-1]
            )

    def run(self, text: str) -> None:
        checked = False
        for block in blocks(text):
            if block.file:
                assert block.lang in ("toml", "python"), (
                    f"{self.where(block)}: file= on {block.lang}"
                )
                (self.directory / block.file).write_text(block.body, encoding="utf-8")
                self.written.add(block.file)
                if block.lang == "python":
                    compile(block.body, f"{self.where(block)} ({block.file})", "exec")
                checked = False
            elif block.run:
                if not checked:
                    self.check_flows()
                    checked = True
                self.ensure_worker()
                if block.lang == "python":
                    self._python(block)
                elif block.lang == "bash":
                    for command in _commands(block.body):
                        self._bash(block, command)
                else:
                    pytest.fail(f"{self.where(block)}: `run` on a {block.lang} block")
        self.check_flows()

    def _python(self, block: Block) -> None:
        script = self.directory / f"_block_{block.line}.py"
        script.write_text(block.body, encoding="utf-8")
        self._expect(block, [sys.executable, script.name], 0, f"python block at line {block.line}")

    def _bash(self, block: Block, command: str) -> None:
        expected = int(match.group(1)) if (match := EXIT.search(command)) else 0
        self._expect(block, ["bash", "-c", command], expected, command)

    def _expect(self, block: Block, argv: list[str], expected: int, what: str) -> None:
        done = subprocess.run(argv, cwd=self.directory, env=self.env, capture_output=True,
                              text=True, timeout=180)  # fmt: skip
        self.ran.append(what)
        with (self.directory / "commands.log").open("a", encoding="utf-8") as log:
            log.write(f"$ {what}\n{done.stdout}{done.stderr}[exit {done.returncode}]\n")
        assert done.returncode == expected, (
            f"{self.where(block)}: `{what}` exited {done.returncode}, expected {expected}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )


def _commands(body: str) -> Iterator[str]:
    """A bash block's commands: one a line (a trailing backslash continues it); comments and
    blank lines skipped."""
    pending = ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            yield command


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_ports() -> tuple[int, int]:
    """A free port P with P + 1000 free too: run links assume the UI there, as Temporal's."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + 1000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1000))
            except OSError:
                continue
        return port, port + 1000


OTHER_PAGES = [page for page in PAGES if page != GETTING_STARTED]


@pytest.mark.parametrize("page", OTHER_PAGES, ids=lambda p: p.name)
def test_page_code_blocks_run(page: Path, tmp_path: Path, client: Client) -> None:
    runner = Page(page, tmp_path, client.service_client.config.target_host)
    try:
        runner.run(page.read_text(encoding="utf-8"))
    finally:
        runner.stop_worker()


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``agentflow dev`` as the tutorial starts it (on free ports): its address and UI port."""
    port, ui_port = _free_ports()
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN / "agentflow"), "dev", "--port", str(port), "--ui-port", str(ui_port),
             "--db", str(tmp_path / "temporal.db")],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "Press Ctrl-C to stop." not in log.read_text(errors="replace"):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield f"127.0.0.1:{port}", ui_port
    finally:
        _stop(server)


def test_getting_started_runs_from_an_empty_directory(
    tmp_path: Path, dev_server: tuple[str, int]
) -> None:
    address, ui_port = dev_server
    directory = tmp_path / "first-flow"
    directory.mkdir()
    runner = Page(GETTING_STARTED, directory, address)
    try:
        runner.run(GETTING_STARTED.read_text(encoding="utf-8"))
    finally:
        runner.stop_worker()
    commands = " ".join(runner.ran)
    for step in ("validate", "run", "trace", "emit", "dead-letters show", "dead-letters redrive"):
        assert f"agentflow {step}" in commands, f"the tutorial never runs `agentflow {step}`"
    # The link `agentflow run` printed opens the run in the UI.
    log = (directory / "commands.log").read_text(encoding="utf-8")
    link = re.search(r"^  (http://\S+/workflows/first-run/\S+)$", log, re.MULTILINE)
    assert link and f":{ui_port}/" in link.group(1), log
    with urllib.request.urlopen(link.group(1), timeout=30) as page:
        assert page.status == 200
