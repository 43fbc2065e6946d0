"""Agents of the demo flow: deterministic text analysis of ``data["text"]``.

Each handler does real work on its input and returns only the keys it adds, which agentflow
merges into a copy of the input state. The publisher writes a Markdown report to disk: the one
side effect, idempotent, so a retried attempt rewrites the same file.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from agentflow import Event, FatalError, State

STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her his
    how i if in into is it its itself just may more most much must my no not now of on one only
    or our out over said she should so some such than that the their them then there these they
    this those through to too under up us very was we were what when where which while who will
    with would you your also about after again all any because before being between both each
    few further here once other own same until why""".split()
)
POSITIVE = frozenset(
    "good great excellent improve improved improves gain gains growth strong success successful "
    "benefit benefits better best reliable fast faster win wins clear robust easy durable".split()
)
NEGATIVE = frozenset(
    "bad poor fail fails failed failure loss losses weak slow slower risk risks problem problems "
    "outage outages crash crashes bug bugs broken hard difficult lost error errors".split()
)
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _text(state: State) -> str:
    text = state.data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise FatalError("input needs a non-empty string field 'text'")
    return text


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]


def _words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def stats(event: Event, state: State) -> dict[str, Any]:
    """Counts: words, sentences, paragraphs, average sentence length, reading time."""
    text = _text(state)
    words, sentences = _words(text), _sentences(text)
    return {
        "stats": {
            "words": len(words),
            "sentences": len(sentences),
            "paragraphs": len([p for p in text.split("\n\n") if p.strip()]),
            "avg_sentence_words": round(len(words) / max(len(sentences), 1), 1),
            "reading_minutes": round(len(words) / 200, 1),
        }
    }


def keywords(event: Event, state: State) -> dict[str, Any]:
    """The most frequent content words (stopwords and short words left out)."""
    counts = Counter(w for w in _words(_text(state)) if w not in STOPWORDS and len(w) > 2)
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:8]
    return {"keywords": [{"word": word, "count": count} for word, count in top]}


def sentiment(event: Event, state: State) -> dict[str, Any]:
    """Lexicon score in [-1, 1]: (positive - negative) / (positive + negative)."""
    words = _words(_text(state))
    pos = sum(w in POSITIVE for w in words)
    neg = sum(w in NEGATIVE for w in words)
    score = round((pos - neg) / (pos + neg), 2) if pos + neg else 0.0
    label = "positive" if score > 0.2 else "negative" if score < -0.2 else "neutral"
    return {"sentiment": {"score": score, "label": label, "positive": pos, "negative": neg}}


def entities(event: Event, state: State) -> dict[str, Any]:
    """Capitalised names not at a sentence start, years, and percentages."""
    text = _text(state)
    names: Counter[str] = Counter()
    for sentence in _sentences(text):
        for match in re.finditer(r"\b([A-Z][a-zA-Z]+(?:\s+[A-Z][a-zA-Z]+)*)", sentence):
            if match.start() > 0 and match.group(1).lower() not in STOPWORDS:
                names[match.group(1)] += 1
    return {
        "entities": {
            "names": sorted(names),
            "years": sorted(set(re.findall(r"\b(?:19|20)\d{2}\b", text))),
            "percentages": re.findall(r"\b\d+(?:\.\d+)?%", text),
        }
    }


def summarizer(event: Event, state: State) -> dict[str, Any]:
    """Extractive summary: the sentences that carry the most keyword weight, in text order."""
    sentences = _sentences(_text(state))
    weights = {k["word"]: k["count"] for k in state.data.get("keywords", [])}
    size = int(event.metadata.get("summary_sentences", "3"))

    def score(sentence: str) -> float:
        words = _words(sentence)
        return float(sum(weights.get(w, 0) for w in words)) / (len(words) ** 0.5 or 1.0)

    ranked = sorted(range(len(sentences)), key=lambda i: (-score(sentences[i]), i))[:size]
    return {"summary": " ".join(sentences[i] for i in sorted(ranked))}


def _syllables(word: str) -> int:
    groups = re.findall(r"[aeiouy]+", word.lower())
    return max(1, len(groups) - (1 if word.lower().endswith("e") and len(groups) > 1 else 0))


def editor(event: Event, state: State) -> dict[str, Any]:
    """Readability (Flesch reading ease) and concrete issues: long or passive sentences."""
    text = _text(state)
    sentences, words = _sentences(text), _words(text)
    syllables = sum(_syllables(w) for w in words)
    words_per_sentence = len(words) / max(len(sentences), 1)
    ease = 206.835 - 1.015 * words_per_sentence - 84.6 * syllables / max(len(words), 1)
    issues = []
    for number, sentence in enumerate(sentences, start=1):
        count = len(_words(sentence))
        if count > 30:
            issues.append(f"sentence {number} has {count} words; consider splitting it")
        if re.search(r"\b(?:was|were|been|being|is|are)\s+\w+ed\b", sentence):
            issues.append(f"sentence {number} may be passive voice")
    return {"readability": round(ease, 1), "issues": issues}


def publisher(event: Event, state: State) -> State:
    """Write the report as Markdown under .agentflow/reports and record where."""
    data = state.data
    title = data.get("title") or "Untitled"
    keywords_line = ", ".join(f"{k['word']} ({k['count']})" for k in data.get("keywords", []))
    stats_ = data.get("stats", {})
    mood = data.get("sentiment", {})
    lines = [
        f"# Report: {title}",
        "",
        f"**Summary.** {data.get('summary', '')}",
        "",
        f"- Words: {stats_.get('words')}, sentences: {stats_.get('sentences')}, "
        f"reading time: {stats_.get('reading_minutes')} min",
        f"- Readability (Flesch): {data.get('readability')}",
        f"- Sentiment: {mood.get('label')} ({mood.get('score')})",
        f"- Keywords: {keywords_line}",
        f"- Names: {', '.join(data.get('entities', {}).get('names', []))}",
        "",
        "## Editor's notes",
        *([f"- {issue}" for issue in data.get("issues", [])] or ["- none"]),
    ]
    report = "\n".join(lines) + "\n"
    path = Path(".agentflow") / "reports" / f"{event.id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report, encoding="utf-8")
    out = state.clone()
    out.data["report_path"] = str(path)
    out.meta["published"] = "true"
    return out
