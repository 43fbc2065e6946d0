"""Web pages in the knowledge base (``[agent_memory.documents] enable_url_scraping = true``):
fetched by the worker from a real HTTP server on 127.0.0.1, read by what they are (HTML as the
text a reader sees, Markdown, text in its character set), retried while the server cannot
answer, refused in one line when they cannot be ingested; and the CLI with a URL."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from temporalio.client import Client

from agentflow.client.memory import ingest, plan_ingest
from agentflow.config import load_config
from agentflow.errors import ConfigError
from agentflow.memory import search, stats
from agentflow.memory.web import html_text
from agentflow.models.memory import IngestResult
from tests.conftest import cli
from tests.memory_goldens import ingest_worker, memory_flow

PAGE = """<!doctype html><html><head><title>Harbour guide</title>
<style>body { color: red }</style><script>var hidden = "SCRIPT_TEXT";</script></head>
<body><nav>Home | Tides</nav><h1>Tides</h1>
<p>The moon pulls the sea &amp; the keeper
   lights the lamp at dusk.</p><p>Ships keep clear of the <b>rocks</b>.</p>
<noscript>NOSCRIPT_TEXT</noscript><ul><li>one buoy</li><li>two buoys</li></ul></body></html>"""
MARKDOWN = "# Logbook\n\nThe lighthouse keeper writes the weather down every evening."
BIG = "x" * 5000
# path: (status, content type, body, extra headers)
ROUTES: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
    "/guide.html": (200, "text/html; charset=utf-8", PAGE.encode(), {}),
    "/log.md": (200, "text/markdown", MARKDOWN.encode(), {}),
    "/menu.txt": (200, "text/plain; charset=iso-8859-1", "café au lait".encode("latin-1"), {}),
    "/gone": (404, "text/html", b"<p>not here</p>", {}),
    "/logo.png": (200, "image/png", b"\x89PNG\r\n\x1a\n\0", {}),
    "/big.txt": (200, "text/plain", BIG.encode(), {}),
    "/moved": (302, "text/html", b"", {"Location": "/log.md"}),
}


class Site:
    """A web server on 127.0.0.1 serving ``ROUTES``; ``/busy.html`` answers 503 with
    ``Retry-After: 1`` until it has been asked ``busy_for`` times. Counts every request."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.busy_for = 1
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests[self.path] += 1
                if self.path == "/busy.html":
                    if site.requests[self.path] <= site.busy_for:
                        return self._reply(503, "text/plain", b"busy", {"Retry-After": "1"})
                    return self._reply(200, "text/html", b"<p>Open for visitors again.</p>", {})
                self._reply(*ROUTES.get(self.path, (404, "text/plain", b"no", {})))

            def _reply(self, status: int, kind: str, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def site() -> Iterator[Site]:
    site = Site()
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    yield site
    site.server.shutdown()
    site.server.server_close()


def test_html_is_the_text_a_reader_sees() -> None:
    text = html_text(PAGE)
    assert "The moon pulls the sea & the keeper lights the lamp at dusk." in text
    assert "Ships keep clear of the rocks." in text
    assert "one buoy\ntwo buoys" in text
    for hidden in ("SCRIPT_TEXT", "NOSCRIPT_TEXT", "color: red", "<", ">"):
        assert hidden not in text
    assert "\n\n\n" not in text and text == text.strip()


async def test_urls_are_refused_unless_the_flow_fetches_pages(tmp_path: Path) -> None:
    plain = load_config(memory_flow(tmp_path))
    with pytest.raises(ConfigError, match=re.escape("enable_url_scraping = true")):
        await plan_ingest(plain, ["https://example.org/page"])
    fetching = load_config(memory_flow(tmp_path, documents={"enable_url_scraping": True}))
    with pytest.raises(ConfigError, match="is not a URL ingest can fetch"):
        await plan_ingest(fetching, ["http:///nohost"])
    plan = await plan_ingest(fetching, ["https://example.org/a", "https://example.org/a"])
    assert [f.path for f in plan.files] == ["https://example.org/a"]  # once, not fetched here


async def test_pages_are_fetched_by_the_worker_read_by_kind_and_refused_in_one_line(
    client: Client, tmp_path: Path, site: Site
) -> None:
    documents = {"enable_url_scraping": True, "max_file_size": "2KB",
                 "supported_types": ["web", "md", "txt"]}  # fmt: skip
    config = load_config(memory_flow(tmp_path, documents=documents))
    good = ["/guide.html", "/log.md", "/menu.txt", "/moved", "/busy.html"]
    bad = {"/gone": "the server answered 404 Not Found", "/logo.png": "is image/png",
           "/big.txt": "is over [agent_memory.documents] max_file_size (2KB)"}  # fmt: skip
    urls = [site.url + path for path in [*good, *bad]]
    async with ingest_worker(client, config):
        result = await ingest(client, config, urls)
        again = await ingest(client, config, urls[:4])
    assert isinstance(result, IngestResult) and isinstance(again, IngestResult)
    failures = {f.path.removeprefix(site.url): f.error for f in result.failures}
    assert set(failures) == set(bad)
    for path, reason in bad.items():
        assert reason in failures[path] and "\n" not in failures[path]
    assert site.requests["/busy.html"] == 2  # 503 with Retry-After, then retried
    assert site.requests["/gone"] == 1  # a 404 is not retried
    assert (result.files_done, result.stored) == (8, 5)
    assert (again.stored, again.skipped) == (0, 4)  # the same pages: stored once
    [hit] = await search(config, "keeper lights the lamp at dusk", k=1)
    assert hit.source == site.url + "/guide.html" and "SCRIPT_TEXT" not in hit.text
    assert hit.metadata["url"] == hit.source and hit.metadata["type"] == "web"
    [menu] = await search(config, "café au lait", k=1)
    assert menu.text == "café au lait"  # iso-8859-1, as the server said
    assert (await stats(config)).records == 5


async def test_memory_cli_with_urls(
    client: Client, cli_env: Path, capsys: pytest.CaptureFixture[str], site: Site
) -> None:
    path = memory_flow(cli_env)
    code, out, err = await cli(capsys, "memory", "ingest", site.url + "/log.md",
                               "--config", str(path))  # fmt: skip
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "enable_url_scraping = true" in err and "Traceback" not in err
    path.write_text(path.read_text() + "enable_url_scraping = true\n")  # [agent_memory.documents]
    config = load_config(path)
    async with ingest_worker(client, config):
        code, out, err = await cli(capsys, "memory", "ingest", site.url + "/log.md",
                                   "--config", str(path))  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[-1].startswith("ingested 1 file into the memory of flow")
    code, out, _ = await cli(capsys, "memory", "forget", site.url + "/log.md",
                             "--config", str(path))  # fmt: skip
    assert (code, out.strip()) == (0, f"forgot 1 record of {site.url}/log.md")
