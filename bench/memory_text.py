"""W10's generated text (bench/memory.py): knowledge chunks, queries and documents."""

from __future__ import annotations

import itertools
import random


class Words:
    """Deterministic text over a 20,000-word vocabulary drawn with Zipf weights (few words
    common, most rare, as in prose)."""

    def __init__(self, seed: int) -> None:
        self.rng, letters = random.Random(seed), "abcdefghijklmnopqrstuvwxyz"
        self.vocabulary = ["".join(self.rng.choices(letters, k=self.rng.randint(3, 10)))
                           for _ in range(20_000)]  # fmt: skip
        self.weights = list(itertools.accumulate(1 / rank for rank in range(1, 20_001)))

    def text(self, words: int) -> str:
        return " ".join(self.rng.choices(self.vocabulary, cum_weights=self.weights, k=words))

    def document(self, megabytes: float) -> str:
        """Paragraphs of 60-140 words, ``megabytes`` of them."""
        paragraphs, size = [], 0
        while size < megabytes * 1e6:
            paragraphs.append(self.text(self.rng.randint(60, 140)).capitalize() + ".")
            size += len(paragraphs[-1]) + 2
        return "\n\n".join(paragraphs)
