"""Held-out validation splits of pair sets (files on disk or pairs made on the fly)."""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Pairs(Protocol):
    """What trainers need of a pair set: a length, names, and `load(i) -> (blurry, sharp)` uint8 BGR."""

    source: str
    skipped: list[str]

    def __len__(self) -> int: ...

    @property
    def names(self) -> list[str]: ...

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray] | None: ...


class PairsView:
    """The pairs of `pairs` at `indices`, in that order."""

    def __init__(self, pairs: Pairs, indices: Sequence[int]) -> None:
        self.pairs, self.indices = pairs, list(indices)
        self.source = pairs.source

    @property
    def skipped(self) -> list[str]:
        return self.pairs.skipped

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def names(self) -> list[str]:
        names = self.pairs.names
        return [names[i] for i in self.indices]

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        return self.pairs.load(self.indices[i])


def spread(pairs: Pairs, count: int) -> Pairs:
    """At most `count` pairs spread evenly over `pairs`, the first and the last among them (a quick but
    representative validation or evaluation set)."""
    if len(pairs) <= count:
        return pairs
    return PairsView(pairs, np.linspace(0, len(pairs) - 1, count).round().astype(int).tolist())


def holdout(pairs: Pairs, val_count: int, seed: int) -> tuple[Pairs, Pairs]:
    """(train, validation), disjoint and seeded. Files: `val_count` pairs held out, never more than a fifth.
    Pairs made on the fly: validation draws on sharp images that training never sees."""
    split = getattr(pairs, "split", None)
    if split is not None:
        return split(val_count, seed)
    order = np.random.default_rng([seed, 7]).permutation(len(pairs)).tolist()
    val_count = min(val_count, len(pairs) // 5)
    return PairsView(pairs, sorted(order[val_count:])), PairsView(pairs, sorted(order[:val_count]))
