"""Cutting a document into the chunks that are embedded and stored: each at most ``size``
characters, each starting about ``overlap`` characters before the previous one ended (so a
sentence cut at a chunk's end is whole in the next), cut where the text breaks naturally.

A chunk's ``text`` is exactly ``text[start:end]`` of the document, without the whitespace
around it, so a hit can point back into its source. The same text always gives the same
chunks: a document ingested twice is stored once (by content hash).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: its index, its character offsets and its text."""

    position: int
    start: int
    end: int
    text: str


# A cut looks for a break in the last fifth of its window: far enough back to end on a
# paragraph, a line or a word, not so far that chunks become much smaller than ``size``.
_CUT_SHARE = 5
_BREAKS = ("\n\n", "\n")


def chunk_text(text: str, size: int, overlap: int) -> list[Chunk]:
    """The chunks of ``text`` (positions 0..n-1); whitespace-only text gives none."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(
            f"chunk size {size} and overlap {overlap}: the size must be positive and the "
            "overlap at least 0 and smaller than the size (each chunk must move forward)"
        )
    chunks: list[Chunk] = []
    start = _skip_space(text, 0)
    while start < len(text):
        end = _cut(text, start, size)
        first, last = start, end
        while last > first and text[last - 1].isspace():
            last -= 1
        if last > first:
            chunks.append(Chunk(len(chunks), first, last, text[first:last]))
        if end >= len(text):
            break
        start = _skip_space(text, _next_start(text, start, end, overlap))
    return chunks


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _cut(text: str, start: int, size: int) -> int:
    """Where the chunk starting at ``start`` ends: the text's end when it fits, else after the
    last paragraph break or line break in the window's last fifth, else at a word's end there,
    else (one long word) at the window's end."""
    limit = start + size
    if limit >= len(text):
        return len(text)
    earliest = limit - max(1, size // _CUT_SHARE)
    for mark in _BREAKS:
        found = text.rfind(mark, earliest, limit)
        if found > start:
            return found + len(mark)
    if text[limit].isspace():
        return limit
    for at in range(limit, max(earliest, start + 1) - 1, -1):
        if text[at - 1].isspace():
            return at
    return limit


def _next_start(text: str, start: int, end: int, overlap: int) -> int:
    """``overlap`` characters before ``end``, moved forward to the start of the next word when
    that falls inside one (unless the word runs to ``end``: a hard cut keeps its overlap), and
    always after ``start``."""
    at = max(end - overlap, start + 1)
    if 0 < at < end and not text[at - 1].isspace():
        space = next((i for i in range(at, end) if text[i].isspace()), end)
        if space < end:
            at = space
    return at
