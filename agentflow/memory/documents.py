"""What ``agentflow memory ingest`` reads: text, Markdown, code and PDF files, and the files
under the directories it is given.

Both the client (before anything starts, so a bad path is one error at once) and the worker's
ingest activity (which stores what it reads) read files through here, so they accept and
refuse the same files with the same words. Every refusal is a MemorySetupError of one line that
names the path: a retry cannot make a missing or binary file readable.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
from collections.abc import Iterable
from pathlib import Path

from agentflow.config.memory import DocumentsConfig
from agentflow.errors import ConfigError
from agentflow.memory.errors import MemorySetupError

MARKDOWN = frozenset({"md", "markdown", "mdx"})
TEXT = frozenset({"txt", "text", "log", "csv", "tsv", "rst", "adoc", "asciidoc", "org", "tex"})
CODE = frozenset(
    "py pyi pyx ipynb js mjs cjs jsx ts tsx go rs java kt kts scala groovy gradle c h cc cpp cxx "
    "hpp hh hxx m mm cs fs fsx vb swift dart rb php pl pm lua r jl hs ml mli ex exs erl hrl clj "
    "cljs elm nim zig v sol sh bash zsh fish ps1 bat cmd sql graphql gql proto thrift html htm "
    "xhtml css scss sass less vue svelte astro json jsonl yaml yml toml ini cfg conf env "
    "properties xml xsd xsl svg tf tfvars hcl nix cmake mk make dockerfile makefile "
    "gitignore editorconfig".split()
)
# Files known by their whole name, not an extension.
CODE_NAMES = frozenset({"dockerfile", "makefile", "gnumakefile", "justfile", "rakefile",
                        "gemfile", "procfile", "vagrantfile", "jenkinsfile"})  # fmt: skip
# ``max_file_size``: a number and a unit, binary multiples (1KB = 1024 bytes).
UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMG]?B)", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``[agent_memory.documents] max_file_size`` in bytes: "10MB", "512KB", "1.5GB", "800B"."""
    found = _SIZE.fullmatch(text.strip())
    if not found or float(found.group(1)) <= 0:
        raise ConfigError(
            f"[agent_memory.documents] max_file_size: {text!r} is not a size; use a positive "
            'number and a unit, B, KB, MB or GB (binary: 1KB = 1024 bytes), e.g. "10MB"'
        )
    return int(float(found.group(1)) * UNITS[found.group(2).upper()])


def document_type(path: Path) -> str:
    """``pdf``, ``md``, ``code`` or ``txt`` (the names of ``supported_types``); a file of
    any other extension is read as ``txt`` if it turns out to be text."""
    name = path.name.lower()
    extension = path.suffix.lower().lstrip(".")
    if extension == "pdf":
        return "pdf"
    if extension in MARKDOWN:
        return "md"
    if extension in CODE or name in CODE_NAMES:
        return "code"
    return "txt"


def read_document(path: Path | str, documents: DocumentsConfig) -> str:
    """The text of ``path`` (PDF: the text of its pages), checked against ``documents``."""
    return read_with_hash(path, documents)[0]


def read_with_hash(path: Path | str, documents: DocumentsConfig) -> tuple[str, str]:
    """The text of ``path`` and the sha256 of its bytes, read once (the activity checks the
    hash against the one the client saw, with the very bytes it stores)."""
    path = Path(path)
    kind = document_type(path)
    if kind not in documents.supported_types:
        allowed = ", ".join(documents.supported_types) or "none"
        raise MemorySetupError(
            f"{path}: {kind} files are not ingested by this flow ([agent_memory.documents] "
            f"supported_types: {allowed})"
        )
    data = _read_bytes(path, parse_size(documents.max_file_size), documents.max_file_size)
    return decode_document(path, kind, data), hashlib.sha256(data).hexdigest()


def decode_document(where: Path | str, kind: str, data: bytes) -> str:
    """The text of ``data``, a document of ``kind`` (``pdf``: its pages' text; any other:
    UTF-8 text); MemorySetupError naming ``where`` (a path or a URL) for anything else."""
    if kind == "pdf":
        return _pdf_text(where, data)
    return _decoded(where, data)


def _read_bytes(path: Path, limit: int, limit_text: str) -> bytes:
    try:
        if path.is_dir():
            raise MemorySetupError(f"{path}: is a directory, not a file")
        size = path.stat().st_size
        if size > limit:
            raise MemorySetupError(
                f"{path}: is {_size(size)}, over [agent_memory.documents] max_file_size "
                f"({limit_text}); split it, or raise max_file_size"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise MemorySetupError(f"{path}: does not exist") from None
    except OSError as err:
        raise MemorySetupError(f"{path}: cannot be read: {err.strerror or err}") from None
    if len(data) > limit:  # it grew since stat
        raise MemorySetupError(f"{path}: is over max_file_size ({limit_text})")
    return data


def _size(size: int) -> str:
    for unit in ("GB", "MB", "KB"):
        if size >= UNITS[unit]:
            return f"{size / UNITS[unit]:.1f}{unit}"
    return f"{size}B"


def _decoded(path: Path | str, data: bytes) -> str:
    """UTF-8 text without NUL bytes; anything else is refused as binary, never guessed at."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise MemorySetupError(f"{path}: is UTF-16 text; save it as UTF-8 to ingest it")
    if b"\0" in data:
        raise MemorySetupError(
            f"{path}: is not text (binary: it holds NUL bytes); ingest text, Markdown, code or "
            "PDF files"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise MemorySetupError(
            f"{path}: is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "ingest text, Markdown, code or PDF files, saved as UTF-8"
        ) from None


def _pdf_text(path: Path | str, data: bytes) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:
        raise MemorySetupError(
            f"{path}: reading PDF files needs pypdf: pip install agentflow[pdf]"
        ) from None
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise MemorySetupError(f"{path}: is an encrypted PDF; decrypt it to ingest it")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as err:
        # pypdf reports a damaged file with its own errors, and sometimes with these.
        raise MemorySetupError(f"{path}: is not a readable PDF ({err})") from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise MemorySetupError(
            f"{path}: PDF has no text to extract (scanned pages are images: OCR it first)"
        )
    return text


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """The files ``paths`` name: files as given, directories walked recursively (sorted,
    hidden directories and files such as .git, .agentflow and .env left out), each absolute
    and once. ConfigError naming a path that does not exist."""
    found: dict[Path, None] = {}
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            raise ConfigError(f"{given}: no such file or directory")
        path = path.resolve()
        if path.is_dir():
            found.update(dict.fromkeys(walk(path)))
        else:
            found[path] = None
    return list(found)


def walk(directory: Path, seen: set[Path] | None = None) -> list[Path]:
    """The files under ``directory``, sorted, not descending into hidden directories (nor
    twice into one directory that links lead back to)."""
    seen = set() if seen is None else seen
    seen.add(directory.resolve())
    files: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.resolve() not in seen:
                files += walk(entry, seen)
        elif entry.is_file():
            files.append(entry.resolve())
    return files
