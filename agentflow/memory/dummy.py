"""The ``dummy`` embedder: vectors from the words of a text, with no service to call.

Feature hashing of a text's words and word pairs (blake2b, so the same in every process):
texts sharing words are near, so retrieval means something in development and tests.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\w+")


def blank_vector(dimensions: int) -> list[float]:
    """The vector of a text without words: cosine needs a unit vector (the zero vector has
    no direction), and this fixed one, equal in every direction, is near no text in
    particular."""
    return [1 / math.sqrt(dimensions)] * dimensions


def dummy_vector(text: str, dimensions: int) -> list[float]:
    """Feature hashing: each casefolded word (weight 1) and pair of adjacent words (0.5)
    adds its weight, with a hash-derived sign, to a hash-chosen bucket; L2-normalised."""
    words = _WORD.findall(text.casefold())
    features = [(word, 1.0) for word in words]
    features += [(f"{a} {b}", 0.5) for a, b in itertools.pairwise(words)]
    vector = [0.0] * dimensions
    for feature, weight in features:
        number = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
        vector[(number >> 1) % dimensions] += weight if number & 1 else -weight
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:  # no words (or, in very few dimensions, features that cancel out)
        return blank_vector(dimensions)
    return [value / norm for value in vector]


@dataclass
class DummyEmbedder:
    """Deterministic vectors from the words of a text (``dummy_vector``); no service."""

    dimensions: int
    model: str = "dummy"
    provider: str = "dummy"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [dummy_vector(text, self.dimensions) for text in texts]
