"""Pairs of a named blur domain made on the fly from sharp content: `--pairs synthetic:known`.

Nothing is written to disk: pair i is a random crop of a random sharp image, blurred by the domain, and a
pure function of (seed, i), so training on it resumes exactly like training on files.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np

from blur2blur.data.blur.content import load_sharp_images
from blur2blur.data.blur.domains import Domain, get_domain
from blur2blur.data.blur.write import random_crop
from blur2blur.errors import UserError

log = logging.getLogger(__name__)

DEFAULTS = {"sharp": "skimage+deadleaves", "size": "128", "count": "10000", "seed": "0"}


class SyntheticPairs:
    """`count` pairs of `size` x `size` from `sources` blurred by `domain`; `load(i)` gives (blurry, sharp)."""

    def __init__(self, domain: Domain, sources: Sequence[np.ndarray], size: int, count: int, seed: int) -> None:
        self.domain, self.sources, self.size, self.count, self.seed = domain, list(sources), size, count, seed
        self.source = f"synthetic:{domain.name}"
        self.skipped: list[str] = []  # a pair is made, never read: nothing is ever skipped

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return (f"SyntheticPairs({self.domain.name!r}, {len(self.sources)} sources, "
                f"{self.count} pairs of {self.size} px)")

    @property
    def names(self) -> list[str]:
        return [f"{self.domain.name}/{i:06d}" for i in range(self.count)]

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, i])
        source = self.sources[int(rng.integers(len(self.sources)))]
        sharp, blurry = self.domain.make_pair(random_crop(source, self.size + 2 * self.domain.margin, rng), rng)
        return blurry, sharp

    def split(self, val_count: int, seed: int) -> tuple[SyntheticPairs, SyntheticPairs]:
        """(train, validation): validation pairs come from a fifth of the sources, held out of training."""
        order = np.random.default_rng([seed, 11]).permutation(len(self.sources)).tolist()
        held = math.ceil(len(self.sources) / 5) if len(self.sources) > 1 else 0
        if not held:
            log.warning("%s: one sharp image only, so validation crops come from the training image", self.source)
        train_sources = [self.sources[i] for i in order[held:]]
        val_sources = [self.sources[i] for i in order[:held]] or train_sources
        train = SyntheticPairs(self.domain, train_sources, self.size, self.count, self.seed)
        # another seed stream: a held-out pair is never a training pair, even with one source
        val = SyntheticPairs(self.domain, val_sources, self.size, val_count, self.seed + 1_000_003)
        return train, val


def _positive(spec: str, options: dict[str, str], key: str, least: int) -> int:
    value = options.get(key, DEFAULTS[key])
    if not value.isdigit() or int(value) < least:
        raise UserError(f"{spec}: {key}= takes a whole number of at least {least}, not '{value}'")
    return int(value)


def synthetic_pairs(spec: str, domain: str, options: dict[str, str]) -> SyntheticPairs:
    """Open `synthetic:DOMAIN?sharp=SPEC&size=N&count=N&seed=N` (defaults in DEFAULTS)."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise UserError(f"{spec}: unknown option {', '.join(unknown)} for synthetic (valid: {', '.join(DEFAULTS)})")
    try:
        blur_domain = get_domain(domain)
    except UserError as err:
        raise UserError(f"{spec}: {err}") from None
    size = _positive(spec, options, "size", 16)
    count = _positive(spec, options, "count", 1)
    seed = _positive(spec, options, "seed", 0)
    sharp = options.get("sharp", DEFAULTS["sharp"])
    sources = load_sharp_images(sharp, max_images=500, option=f"{spec}: sharp=")
    return SyntheticPairs(blur_domain, sources, size, count, seed)
