"""The console's HTML: one layout, a few pieces (tables, forms, times), and the error page.

Plain strings with every value passed through ``html.escape`` (``e``); no template engine and
no build step. The pages themselves are in ``console_pages.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from typing import Any
from urllib.parse import quote

from agentflow.serve.auth import Action, Principal

__all__ = ["Page", "ago", "e", "error_page", "form", "layout", "pre_json", "table", "when"]

NAV = (("approvals", "Approvals"), ("sessions", "Sessions"), ("dead-letters", "Dead letters"))


def e(value: object) -> str:
    """``value`` as HTML text (quotes too: safe inside attributes)."""
    return escape("" if value is None else str(value), quote=True)


def path(*parts: str) -> str:
    """``/ui/a/b`` with each part URL-quoted (ids may hold any character but ``/``)."""
    return "/ui/" + "/".join(quote(part, safe="") for part in parts)


@dataclass
class Page:
    """What every page of a signed-in person shows: who, and the CSRF token for its forms."""

    who: Principal
    csrf: str
    signed_in: bool  # False under --insecure-local: no sign-out button

    def may(self, action: Action) -> bool:
        return self.who.may(action)


def layout(title: str, body: str, page: Page | None, active: str = "") -> str:
    """The whole document: header with navigation and who is signed in, then ``body``."""
    nav = ""
    if page is not None:
        links = "".join(
            f'<a href="{path(slug)}"{" class=active" if slug == active else ""}>{label}</a>'
            for slug, label in NAV
        )
        out = ""
        if page.signed_in:
            out = form("/ui/sign-out", page, '<button class="link">Sign out</button>')
        nav = (f'<nav>{links}</nav><div class="who">{e(page.who.name)} '
               f'<span class="role">{e(page.who.role)}</span>{out}</div>')  # fmt: skip
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · agentflow</title>
<link rel="stylesheet" href="/ui/static/console.css">
<script src="/ui/static/console.js" defer></script>
</head><body>
<header><a class="brand" href="/ui/">agentflow</a>{nav}</header>
<main><h1>{e(title)}</h1>
{body}
</main></body></html>"""


def form(action: str, page: Page, inner: str, css: str = "inline") -> str:
    """A POST form to ``action`` carrying the page's CSRF token."""
    return (f'<form method="post" action="{e(action)}" class="{css}">'
            f'<input type="hidden" name="csrf" value="{e(page.csrf)}">{inner}</form>')  # fmt: skip


def hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{e(name)}" value="{e(value)}">'


def table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    """A table of already-escaped cells, or ``empty`` (a sentence) when there are no rows."""
    if not rows:
        return f'<p class="empty">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pre_json(value: Any) -> str:
    return f"<pre>{e(json.dumps(value, indent=2, ensure_ascii=False, default=str))}</pre>"


def when(moment: datetime | None) -> str:
    """``2026-12-07 18:40:12 UTC`` (empty for None)."""
    if moment is None:
        return ""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long since ``moment``: ``42 s``, ``3 min``, ``5 h 10 min``, ``2 d 4 h``."""
    if moment is None:
        return ""
    seconds = max(0, int(((now or datetime.now(timezone.utc)) - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"


def ui_link(href: str) -> str:
    return f'<a class="temporal" href="{e(href)}" target="_blank" rel="noopener">Temporal UI ↗</a>'


def notice(text: str | None) -> str:
    return f'<p class="notice">{e(text)}</p>' if text else ""


def error_page(status: int, title: str, detail: str, page: Page | None) -> str:
    """A readable page for a refused or failed request: the status, what went wrong."""
    back = '<a href="/ui/sign-in">Sign in</a>' if status == 401 else (
        '<a href="/ui/">Back to the console</a>')  # fmt: skip
    body = f'<div class="error"><p>{e(detail)}</p></div><p>{back}</p>'
    return layout(f"{status} {title}", body, page)
