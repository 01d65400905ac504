"""Blur domains: reproducible from a seed, aligned pairs, and measurably different from each other."""

from __future__ import annotations

import json
from functools import lru_cache

import cv2
import numpy as np
import pytest

from blur2blur.errors import UserError
from blur2blur.train.deadleaves import dead_leaves
from blur2blur.train.domains import DOMAINS, describe_params, domain_summary, get_domain

OUT = 160  # output crop size of the measurements
SEEDS = range(4)
UNKNOWN = [name for name in DOMAINS if name != "known"]


@lru_cache(maxsize=1)
def _source() -> np.ndarray:
    """A fixed sharp image with clean flats (no texture) and some near-white highlights."""
    return dead_leaves(OUT + 2 * max(d.margin for d in DOMAINS.values()), np.random.default_rng(7),
                       texture=0.0, highlight_prob=0.05)


def _pair(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    d = get_domain(name)
    return d.make_pair(_source()[: OUT + 2 * d.margin, : OUT + 2 * d.margin], np.random.default_rng(seed))


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)


def _half(gray: np.ndarray) -> np.ndarray:
    """Area-downsampled by 2: blur survives, pixel noise and JPEG blocks mostly do not."""
    return cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2), interpolation=cv2.INTER_AREA)


def directional_loss(sharp: np.ndarray, blurry: np.ndarray) -> float:
    """log(fraction of vertical-gradient energy kept / fraction of horizontal-gradient energy kept).

    Horizontal motion removes horizontal gradients: positive; vertical motion: negative; isotropic: ~0.
    """
    s, b = _half(_gray(sharp)), _half(_gray(blurry))
    kept_x = np.mean(np.diff(b, axis=1) ** 2) / np.mean(np.diff(s, axis=1) ** 2)
    kept_y = np.mean(np.diff(b, axis=0) ** 2) / np.mean(np.diff(s, axis=0) ** 2)
    return float(np.log(kept_y / kept_x))


def noise_sigma(image: np.ndarray) -> float:
    """Immerkaer's fast noise estimate (8-bit levels) from a Laplacian-difference mask."""
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    response = cv2.filter2D(_gray(image), -1, mask)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.mean(np.abs(response)) / 6)


def blockiness(image: np.ndarray) -> float:
    """Mean step across 8 x 8 block boundaries over the mean step inside blocks (~1 without JPEG)."""
    g = _gray(image)
    dx, dy = np.abs(np.diff(g, axis=1)), np.abs(np.diff(g, axis=0))
    at_x, at_y = np.arange(dx.shape[1]) % 8 == 7, np.arange(dy.shape[0]) % 8 == 7
    return float((dx[:, at_x].mean() + dy[at_y].mean()) / (dx[:, ~at_x].mean() + dy[~at_y].mean()))


def sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(_half(_gray(image)), cv2.CV_64F).var())


def saturated(image: np.ndarray) -> float:
    return float((image.max(axis=2) == 255).mean())


@lru_cache(maxsize=None)
def stats(name: str) -> dict[str, float]:
    """Each statistic averaged over a few seeds of the domain on the fixed image."""
    rows = []
    for seed in SEEDS:
        sharp, blurry = _pair(name, seed)
        rows.append(dict(direction=directional_loss(sharp, blurry), noise=noise_sigma(blurry),
                         blocks=blockiness(blurry), sharpness_ratio=sharpness(blurry) / sharpness(sharp),
                         saturation_growth=saturated(blurry) / max(saturated(sharp), 1e-4)))
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


@pytest.mark.parametrize("name", list(DOMAINS))
def test_each_domain_is_reproducible_from_its_seed(name):
    a_sharp, a_blurry = _pair(name, 11)
    b_sharp, b_blurry = _pair(name, 11)
    _, c_blurry = _pair(name, 12)
    assert a_blurry.tobytes() == b_blurry.tobytes() and a_sharp.tobytes() == b_sharp.tobytes()
    assert a_blurry.tobytes() != c_blurry.tobytes()


@pytest.mark.parametrize("name", list(DOMAINS))
def test_make_pair_returns_aligned_same_size_uint8_pairs(name):
    sharp, blurry = _pair(name, 3)
    assert sharp.shape == blurry.shape == (OUT, OUT, 3)
    assert sharp.dtype == blurry.dtype == np.uint8
    (dx, dy), _ = cv2.phaseCorrelate(_half(_gray(sharp)), _half(_gray(blurry)))
    assert abs(dx) < 0.5 and abs(dy) < 0.5, f"{name} shifts content by ({dx:.2f}, {dy:.2f}) half-res px"


@pytest.mark.parametrize("name", [n for n, d in DOMAINS.items() if d.tone == "srgb"])
def test_srgb_domains_keep_the_sharp_crop_unchanged(name):
    d = get_domain(name)
    source = _source()[: OUT + 2 * d.margin, : OUT + 2 * d.margin]
    sharp, _ = d.make_pair(source, np.random.default_rng(0))
    assert np.array_equal(sharp, source[d.margin : -d.margin, d.margin : -d.margin])


@pytest.mark.parametrize("name", list(DOMAINS))
def test_blurry_images_are_blurrier_than_sharp_ones(name):
    assert stats(name)["sharpness_ratio"] < 0.8


def test_known_blur_is_horizontal_and_each_unknown_camera_is_not():
    known = stats("known")["direction"]
    assert known > 0.8
    assert stats("vertical")["direction"] < -0.8
    assert abs(stats("defocus")["direction"]) < 0.3
    for name in UNKNOWN:
        assert stats(name)["direction"] < known - 0.5, name


def test_noisy_cameras_are_noisier_than_the_known_one():
    known = stats("known")["noise"]
    assert known < 2.0
    assert stats("shake")["noise"] > 1.8 * known
    assert stats("lowlight")["noise"] > 5.0 * known


def test_only_the_phone_shows_jpeg_blocks():
    assert stats("phone")["blocks"] > 1.15
    for name in DOMAINS:
        if name != "phone":
            assert stats(name)["blocks"] < 1.08, name


def test_shake_highlights_saturate_into_streaks_but_known_ones_do_not():
    assert stats("shake")["saturation_growth"] > 5.0
    assert stats("lowlight")["saturation_growth"] > 3.0
    assert stats("known")["saturation_growth"] <= 1.0


def test_margin_covers_every_kernel_the_domain_samples():
    for d in DOMAINS.values():
        for seed in range(200):
            kernel = d.sample(np.random.default_rng(seed))["kernel"]
            assert max(kernel.shape) // 2 <= d.margin, d.name


def test_sampled_params_describe_as_json():
    for d in DOMAINS.values():
        params = describe_params(d.sample(np.random.default_rng(0)))
        assert json.loads(json.dumps(params))["domain"] == d.name


def test_known_domain_stays_the_narrow_family_the_deblurrer_learns():
    for seed in range(100):
        p = get_domain("known").sample(np.random.default_rng(seed))
        assert p["blur"] == "linear" and 9 <= p["length_px"] <= 13 and -15 <= p["angle_deg"] <= 15
        assert p["tone"] == "srgb" and p["jpeg_quality"] is None and p["exposure"] == 1.0


def test_unknown_domain_name_lists_the_choices():
    with pytest.raises(UserError, match="known.*shake"):
        get_domain("gopro")
    names = [name for name, _ in domain_summary()]
    assert names[0] == "known" and len(names) >= 5 and all(desc for _, desc in domain_summary())


def test_make_pair_rejects_an_image_smaller_than_its_margin():
    with pytest.raises(ValueError):
        get_domain("shake").make_pair(np.zeros((40, 40, 3), np.uint8), np.random.default_rng(0))
