"""Web pages for ``agentflow memory ingest``, with ``[agent_memory.documents]
enable_url_scraping = true``: an ``http://`` or ``https://`` argument is fetched and stored like
a file, its URL as the records' source.

The worker fetches (in the ingest activity), never the client: the client checks the URL's form
and the flow's settings, so a bad argument is one error before anything starts, and the page is
read from where the worker runs (which may reach an intranet the client does not). A page is
stored as fetched; there is no hash to compare against, as a page may change between two reads.

What comes back decides how it is read, as a file's extension does: HTML (``web`` in
``supported_types``) is turned into text, scripts, styles and markup dropped; Markdown, other
text and JSON are ``md`` and ``txt``; PDF is ``pdf``. Anything else is refused. A page over
``max_file_size`` is refused while it streams, before it is all read.

Failures: a server that cannot be reached, times out or answers 408, 429 or 5xx may answer
later (MemoryUnavailable: Temporal retries, no sooner than its ``Retry-After``); any other
status, a type not ingested or a page too big fails the page at once (MemorySetupError).
"""

from __future__ import annotations

import codecs
import hashlib
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx

from agentflow.config.memory import DocumentsConfig
from agentflow.errors import ConfigError, retry_after_seconds
from agentflow.memory.documents import decode_document, parse_size
from agentflow.memory.errors import MemorySetupError, MemoryUnavailable

__all__ = ["check_url", "fetch_page", "html_text", "is_url"]

FETCH_TIMEOUT_SECONDS = 30.0
MAX_REDIRECTS = 5
HTML = frozenset({"text/html", "application/xhtml+xml"})
MARKDOWN = frozenset({"text/markdown", "text/x-markdown"})
TEXT = frozenset({"application/json", "application/xml", "application/ld+json"})
# Elements whose content is never text a reader sees.
HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "canvas"})
# Elements that start a new line of text.
BLOCKS = frozenset(
    "address article aside blockquote br dd details div dl dt fieldset figcaption figure footer "
    "form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table tbody td tfoot "
    "th thead title tr ul".split()
)
PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "blockquote"})
RETRIED = frozenset({408, 425, 429})
ACCEPT = "text/html, application/xhtml+xml, text/markdown, text/*, application/pdf"


def is_url(argument: object) -> bool:
    """Whether an ingest argument names a web page (``http://`` or ``https://``)."""
    return isinstance(argument, str) and argument.lower().startswith(("http://", "https://"))


def check_url(url: str, documents: DocumentsConfig) -> str:
    """``url`` as given, when this flow may ingest it; ConfigError saying why not."""
    if not documents.enable_url_scraping:
        raise ConfigError(
            f"{url}: is a web page; ingest fetches pages only with [agent_memory.documents] "
            "enable_url_scraping = true (or save the page and ingest the file)"
        )
    parts = urlsplit(url)
    if not parts.hostname or any(c.isspace() for c in url):
        raise ConfigError(f"{url}: is not a URL ingest can fetch (http://HOST/... or https://)")
    return url


async def fetch_page(url: str, documents: DocumentsConfig) -> tuple[str, str, str]:
    """The text of the page at ``url``, the sha256 of its bytes and its kind (``web``, ``md``,
    ``txt`` or ``pdf``), checked against ``documents`` as a file is."""
    limit = parse_size(documents.max_file_size)
    try:
        async with (
            httpx.AsyncClient(
                follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=FETCH_TIMEOUT_SECONDS
            ) as http,  # fmt: skip
            http.stream("GET", url, headers={"accept": ACCEPT}) as reply,
        ):
            _check_status(url, reply)
            kind = _kind(url, reply.headers.get("content-type", ""), documents)
            data = await _body(url, reply, limit, documents.max_file_size)
            charset = reply.charset_encoding
    except httpx.TooManyRedirects:
        raise MemorySetupError(f"{url}: redirects more than {MAX_REDIRECTS} times") from None
    except (httpx.TimeoutException, httpx.TransportError) as err:
        raise MemoryUnavailable(f"{url}: cannot be fetched now ({type(err).__name__}: "
                                f"{err or 'no detail'})") from None  # fmt: skip
    digest = hashlib.sha256(data).hexdigest()
    if kind == "pdf" or _utf8(url, charset):  # read as a file of its kind is
        text = decode_document(url, kind, data)
    else:
        text = _decoded(url, data, charset or "utf-8")
    return (html_text(text) if kind == "web" else text), digest, kind


def html_text(page: str) -> str:
    """What a reader of ``page`` sees, as text: a line per block, a blank line between
    paragraphs and headings, whitespace collapsed as a browser does (not in ``<pre>``),
    entities resolved, scripts, styles and markup left out."""
    parser = _Text()
    parser.feed(page)
    parser.close()
    return "".join(parser.parts).strip()


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = self.pre = 0  # depth inside hidden elements, and inside <pre>
        self.breaks = 0  # before the next text: 1 a new line, 2 a blank line
        self.space = False  # before the next text on the same line: a space

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, +1)

    def handle_endtag(self, tag: str) -> None:
        self._tag(tag, -1)

    def _tag(self, tag: str, step: int) -> None:
        if tag in HIDDEN:
            self.hidden = max(0, self.hidden + step)
        if tag == "pre":
            self.pre = max(0, self.pre + step)
        if tag in BLOCKS:
            self.breaks = max(self.breaks, 2 if tag in PARAGRAPHS else 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        trailing = False
        if not self.pre:  # runs of whitespace are one space, none at a line's ends
            words = " ".join(data.split())
            self.space = self.space or data[:1].isspace()
            if not words:
                return
            data, trailing = words, data[-1:].isspace()
        if self.breaks and self.parts:
            self.parts.append("\n" * self.breaks)
        elif self.space and self.parts:
            self.parts.append(" ")
        self.breaks, self.space = 0, trailing
        self.parts.append(data)


def _check_status(url: str, reply: httpx.Response) -> None:
    status = reply.status_code
    if 200 <= status < 300:
        return
    said = f"{url}: the server answered {status} {reply.reason_phrase}".rstrip()
    if status in RETRIED or status >= 500:
        headers = {k.lower(): v for k, v in reply.headers.items()}
        raise MemoryUnavailable(said, retry_after=retry_after_seconds(headers))
    raise MemorySetupError(said)


def _kind(url: str, content_type: str, documents: DocumentsConfig) -> str:
    media = content_type.split(";")[0].strip().lower()
    if media in HTML:
        kind = "web"
    elif media in MARKDOWN:
        kind = "md"
    elif media == "application/pdf":
        kind = "pdf"
    elif media.startswith("text/") or media in TEXT or media.endswith("+json"):
        kind = "txt"
    else:
        raise MemorySetupError(
            f"{url}: is {media or 'of no stated type'}; ingest takes web pages, text, "
            "Markdown and PDF"
        )
    if kind not in documents.supported_types:
        allowed = ", ".join(documents.supported_types) or "none"
        raise MemorySetupError(
            f"{url}: {kind} pages are not ingested by this flow ([agent_memory.documents] "
            f"supported_types: {allowed})"
        )
    return kind


async def _body(url: str, reply: httpx.Response, limit: int, limit_text: str) -> bytes:
    too_big = f"{url}: is over [agent_memory.documents] max_file_size ({limit_text})"
    declared = reply.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise MemorySetupError(too_big)
    data = bytearray()
    async for piece in reply.aiter_bytes():
        data += piece
        if len(data) > limit:
            raise MemorySetupError(too_big)
    return bytes(data)


def _utf8(url: str, charset: str | None) -> bool:
    """Whether the page is UTF-8: it says so, or says nothing (HTML's own default is
    windows-1252, but pages that say nothing are UTF-8 far more often today)."""
    if not charset:
        return True
    try:
        return codecs.lookup(charset).name == "utf-8"
    except LookupError:
        raise MemorySetupError(
            f"{url}: is in a character set Python does not know: {charset!r}"
        ) from None


def _decoded(url: str, data: bytes, charset: str) -> str:
    try:
        return data.decode(charset)
    except UnicodeDecodeError as err:
        raise MemorySetupError(
            f"{url}: is not {charset} text as it says (byte 0x{data[err.start]:02x} at offset "
            f"{err.start})"
        ) from None
