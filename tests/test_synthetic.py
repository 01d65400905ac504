"""Pairs made on the fly (`synthetic:DOMAIN`): reproducible, held out by source, opened like any pairs."""

import numpy as np
import pytest

from blur2blur.data.blur.domains import get_domain
from blur2blur.data.blur.synthetic_pairs import SyntheticPairs
from blur2blur.data.sources import open_pairs
from blur2blur.errors import UserError


def sources(count: int) -> list[np.ndarray]:
    """Flat images of distinct colours: a pair's colour tells its source."""
    return [np.full((96, 96, 3), 20 * i + 10, np.uint8) for i in range(count)]


def test_pair_i_is_the_same_every_time_and_differs_from_pair_j():
    pairs = SyntheticPairs(get_domain("known"), [np.random.default_rng(0).integers(0, 256, (80, 90, 3), np.uint8)],
                           size=32, count=5, seed=4)
    blurry, sharp = pairs.load(3)
    assert blurry.shape == sharp.shape == (32, 32, 3) and blurry.dtype == np.uint8
    again = pairs.load(3)
    assert np.array_equal(again[0], blurry) and np.array_equal(again[1], sharp)
    assert not np.array_equal(pairs.load(2)[1], sharp)
    assert len(pairs) == 5 and pairs.names[3] == "known/000003"


def test_validation_pairs_come_from_sources_training_never_sees():
    pairs = SyntheticPairs(get_domain("known"), sources(10), size=24, count=50, seed=0)
    train, val = pairs.split(val_count=6, seed=0)
    assert len(val) == 6 and len(train) == 50
    colour = lambda images: int(images[1][12, 12, 0])  # noqa: E731
    train_colours = {colour(train.load(i)) for i in range(50)}
    val_colours = {colour(val.load(i)) for i in range(6)}
    assert len(train_colours) == 8 and 1 <= len(val_colours) <= 2 and not train_colours & val_colours


def test_open_pairs_makes_them_from_a_spec():
    pairs = open_pairs("synthetic:defocus?sharp=deadleaves:2&size=40&count=7&seed=3")
    assert len(pairs) == 7 and pairs.load(6)[0].shape == (40, 40, 3) and pairs.domain.name == "defocus"


@pytest.mark.parametrize("spec, words", [
    ("synthetic:nope", "unknown blur domain 'nope'"),
    ("synthetic:known?size=8", "size= takes a whole number of at least 16"),
    ("synthetic:known?count=x", "count= takes a whole number"),
    ("synthetic:known?colour=red", "unknown option colour for synthetic"),
    ("synthetic:known?sharp=/no/such/folder", "sharp= /no/such/folder"),
])
def test_bad_specs_are_one_line_errors_naming_the_option(spec, words):
    with pytest.raises(UserError, match=words) as err:
        open_pairs(spec)
    assert str(err.value).startswith(f"--pairs {spec}") and "\n" not in str(err.value)
