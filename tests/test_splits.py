"""Held-out splits of pairs on disk."""

from helpers import pair_folder

from blur2blur.data.pairs import paired_folder
from blur2blur.data.splits import holdout


def test_holdout_is_seeded_disjoint_and_at_most_a_fifth(tmp_path):
    pairs = paired_folder(pair_folder(tmp_path, count=12, bad_files=False))
    train, val = holdout(pairs, val_count=8, seed=0)
    assert len(val) == 2 and len(train) == 10  # 8 asked, a fifth of 12 given
    assert not set(train.names) & set(val.names) and set(train.names) | set(val.names) == set(pairs.names)
    assert holdout(pairs, 8, seed=0)[1].names == val.names and holdout(pairs, 8, seed=1)[1].names != val.names
    assert train.load(0)[0].shape == (48, 48, 3)
