import cv2
import numpy as np
import torch

from blur2blur.data.pairs import paired_folder
from blur2blur.train.crops import PairedCrops, StepSampler, bgr_to_tensor, tensor_to_bgr


def make_pairs(root, count=3, size=40):
    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        sharp = rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "sharp" / f"{i}.png"), sharp)
        cv2.imwrite(str(root / "blur" / f"{i}.png"), cv2.blur(sharp, (9, 1)))  # horizontal box blur
    return paired_folder(root).validate()


def test_sample_n_is_the_same_crop_whatever_the_order_it_is_asked_in(tmp_path):
    crops = PairedCrops(make_pairs(tmp_path), crop=16, seed=3)
    first = [crops[n] for n in range(7)]
    again = [crops[n] for n in reversed(range(7))][::-1]
    for (b1, s1), (b2, s2) in zip(first, again):
        assert torch.equal(b1, b2) and torch.equal(s1, s2)
    assert not torch.equal(first[0][0], first[1][0])
    assert not torch.equal(crops[0][0], PairedCrops(crops.pairs, crop=16, seed=4)[0][0])


def test_crops_stay_aligned_and_keep_the_blur_direction_unless_rotating(tmp_path):
    pairs = make_pairs(tmp_path)
    for rotate, expect_vertical in ((False, False), (True, True)):
        crops = PairedCrops(pairs, crop=32, seed=0, rotate=rotate)
        vertical_seen = False
        for n in range(12):
            blur, sharp = (tensor_to_bgr(t) for t in crops[n])
            assert blur.shape == sharp.shape == (32, 32, 3)
            # the box blur along x smooths horizontal differences; after a 90-degree turn, vertical ones
            dx = np.abs(np.diff(blur.astype(float), axis=1)).mean()
            dy = np.abs(np.diff(blur.astype(float), axis=0)).mean()
            vertical_seen |= dy < dx
            # aligned: blurring the sharp crop along the blur direction reproduces the blurry one inside
            kernel = (9, 1) if dx < dy else (1, 9)
            inner = (slice(5, -5), slice(5, -5))
            assert np.abs(cv2.blur(sharp, kernel)[inner].astype(int) - blur[inner]).max() <= 1
        assert vertical_seen == expect_vertical


def test_small_images_are_padded_to_the_crop(tmp_path):
    crops = PairedCrops(make_pairs(tmp_path, size=10), crop=24, seed=0)
    blur, sharp = crops[0]
    assert blur.shape == sharp.shape == (3, 24, 24)


def test_tensor_conversion_round_trips_bgr():
    image = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = bgr_to_tensor(image)
    assert tensor.shape == (3, 5, 7) and round(float(tensor[0, 0, 0]) * 255) == image[0, 0, 2]  # R first
    np.testing.assert_array_equal(tensor_to_bgr(tensor), image)


def test_processes_share_each_step_as_one_process_with_the_whole_batch_would():
    whole = list(StepSampler(3, 6, batch=4))
    assert whole == list(range(12, 24))
    ranks = [list(StepSampler(3, 6, batch=2, rank=r, world=2)) for r in range(2)]
    for step in range(3):  # per step, the two ranks' samples are that step's samples of the single process
        assert sorted(ranks[0][2 * step:2 * step + 2] + ranks[1][2 * step:2 * step + 2]) == whole[4 * step:4 * step + 4]
    assert len(StepSampler(3, 6, batch=2, rank=1, world=2)) == 6


def test_a_pair_that_went_bad_is_replaced_by_another(tmp_path):
    pairs = make_pairs(tmp_path, count=3)
    (tmp_path / "blur" / "1.png").write_bytes(b"gone")
    crops = PairedCrops(pairs, crop=16, seed=0)
    assert all(crops[n][0].shape == (3, 16, 16) for n in range(9))
