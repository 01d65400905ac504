"""Blur domains: reproducible from a seed, aligned pairs, and measurably different from each other."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from functools import lru_cache

import cv2
import numpy as np
import pytest

from blur2blur.data.blur.deadleaves import dead_leaves
from blur2blur.data.blur.domains import (
    CAMERAS,
    DOMAINS,
    describe_params,
    domain_summary,
    get_domain,
    parse_cameras,
    random_domain,
)
from blur2blur.errors import UserError

OUT = 160  # output crop size of the measurements
SEEDS = range(4)
NARROW = ("horizontal", "vertical")  # the quickly learnt families, not cameras


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


def sensor_noise(name: str, seed: int) -> float:
    """The camera's noise (8-bit levels): the same blur recorded twice with different noise draws.

    The two captures differ only by their noise (and the rounding, JPEG and ISP that follow), so the
    spread of their difference / sqrt 2 is the noise, whatever blur or content is left in the image.
    """
    d = get_domain(name)
    image = _source()[: OUT + 2 * d.margin, : OUT + 2 * d.margin]
    params = d.sample(np.random.default_rng(seed))
    a, b = (d.apply(image, params, np.random.default_rng(draw))[d.margin : -d.margin, d.margin : -d.margin]
            for draw in (1000 + seed, 2000 + seed))
    return float(np.std(_gray(a) - _gray(b)) / np.sqrt(2))


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
        rows.append(dict(direction=directional_loss(sharp, blurry), noise=sensor_noise(name, seed),
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


def test_render_blurs_a_whole_image_its_border_mirrored():
    known, image = get_domain("known"), _source()[:OUT, :OUT]
    sharp, blurry = known.render(image, np.random.default_rng(3))
    assert np.array_equal(sharp, image) and blurry.shape == image.shape  # the whole image, no margin lost
    inside = known.make_pair(image, np.random.default_rng(3))[1]  # the same kernel (other noise), interior only
    m = known.margin
    smooth = [cv2.blur(x.astype(np.float32), (5, 5)) for x in (blurry[m:-m, m:-m], inside, image[m:-m, m:-m])]
    assert np.abs(smooth[0] - smooth[1]).mean() < 1  # 8-bit levels, the noise averaged out
    assert np.abs(smooth[0] - smooth[2]).mean() > 3  # while the blur is far larger


@pytest.mark.parametrize("name", [n for n in DOMAINS if n != "still"])
def test_blurry_images_are_blurrier_than_sharp_ones(name):
    assert stats(name)["sharpness_ratio"] < 0.8


def test_the_still_camera_keeps_the_sharp_frame_but_for_the_known_sensor_noise():
    ratio, noise = stats("still")["sharpness_ratio"], stats("still")["noise"]
    assert 0.95 < ratio < 1.3  # no blur; the sensor's noise adds a little high frequency
    assert abs(noise - stats("known")["noise"]) < 0.3 * stats("known")["noise"]  # the known camera's sensor


def test_the_narrow_families_keep_their_direction_and_defocus_has_none():
    assert stats("horizontal")["direction"] > 0.8
    assert stats("vertical")["direction"] < -0.8
    assert abs(stats("defocus")["direction"]) < 0.3


def test_known_blur_moves_in_every_direction():
    # each image is blurred along one (gently curving) path, so one image has a direction; over many
    # seeds they cancel out, where the narrow horizontal family would stay near +1
    directions = [directional_loss(*_pair("known", seed)) for seed in range(24)]
    assert abs(float(np.mean(directions))) < 0.3, directions
    assert min(directions) < -0.5 and max(directions) > 0.5, directions


def test_noisy_cameras_are_noisier_than_the_known_one():
    known = stats("known")["noise"]
    assert known < 2.0  # mild noise, as GoPro's: about 1.3 levels RMS at mid grey
    assert stats("shake")["noise"] > 1.4 * known
    assert stats("lowlight")["noise"] > 5.0 * known


def test_only_the_phone_shows_jpeg_blocks():
    assert stats("phone")["blocks"] > 1.15
    for name in DOMAINS:
        if name != "phone":
            assert stats(name)["blocks"] < 1.08, name


def test_streak_and_night_highlights_saturate_but_known_and_shake_ones_do_not():
    assert stats("streaks")["saturation_growth"] > 5.0
    assert stats("lowlight")["saturation_growth"] > 3.0
    assert stats("known")["saturation_growth"] <= 1.0
    assert stats("shake")["saturation_growth"] <= 1.0  # no highlight boost: blur only spreads them


def test_margin_covers_every_kernel_the_domain_samples():
    for d in DOMAINS.values():
        for seed in range(200):
            kernel = d.sample(np.random.default_rng(seed))["kernel"]
            assert max(kernel.shape) // 2 <= d.margin, d.name


def test_sampled_params_describe_as_json():
    for d in DOMAINS.values():
        params = describe_params(d.sample(np.random.default_rng(0)))
        assert json.loads(json.dumps(params))["domain"] == d.name


def _moments(kernel: np.ndarray) -> tuple[float, float, float, float]:
    h, w = kernel.shape
    ys, xs = np.mgrid[0:h, 0:w]
    xs, ys = xs - w // 2, ys - h // 2
    mx, my = float((kernel * xs).sum()), float((kernel * ys).sum())
    return mx, my, float((kernel * (xs - mx) ** 2).sum()), float((kernel * (ys - my) ** 2).sum())


def _principal_angle(kernel: np.ndarray) -> float:
    """The direction (degrees in [0, 180)) of a kernel's major axis, from its second moments."""
    mx, my, var_x, var_y = _moments(kernel)
    h, w = kernel.shape
    ys, xs = np.mgrid[0:h, 0:w]
    cov_xy = float((kernel * (xs - w // 2 - mx) * (ys - h // 2 - my)).sum())
    return float(np.degrees(0.5 * np.arctan2(2 * cov_xy, var_x - var_y)) % 180.0)


def test_known_domain_is_smooth_camera_motion_on_a_clean_srgb_camera():
    angles = []
    for seed in range(100):
        p = get_domain("known").sample(np.random.default_rng(seed))
        assert p["blur"] == "motion" and 4 <= p["length_px"] <= 14 and "angle_deg" not in p
        assert p["tone"] == "srgb" and p["jpeg_quality"] is None and p["exposure"] == 1.0
        assert p["highlight_gain"] == 1.0 and p["denoise"] == 0.0 and p["sharpen"] == 0.0
        angles.append(_principal_angle(p["kernel"]))
    # every direction: each 45-degree sector of orientations holds a fair share of the kernels
    counts = np.histogram(angles, bins=4, range=(0.0, 180.0))[0]
    assert counts.min() >= 10, counts


def test_cameras_are_the_unknown_domains():
    assert len(CAMERAS) >= 5 and len(set(CAMERAS)) == len(CAMERAS)
    for name in CAMERAS:
        assert name in DOMAINS and name not in ("known", *NARROW), name


def test_unknown_domain_name_lists_the_choices():
    with pytest.raises(UserError, match="known.*shake.*random:SEED"):
        get_domain("gopro")
    names = [name for name, _ in domain_summary()]
    assert names[0] == "known" and len(names) >= 5 and all(desc for _, desc in domain_summary())


def test_make_pair_rejects_an_image_smaller_than_its_margin():
    with pytest.raises(ValueError):
        get_domain("shake").make_pair(np.zeros((40, 40, 3), np.uint8), np.random.default_rng(0))


@lru_cache(maxsize=1)
def _small_source() -> np.ndarray:
    return dead_leaves(96, np.random.default_rng(5), texture=0.5, highlight_prob=0.05)


def _settings(domain) -> object:
    """A domain's camera without its name and description."""
    return dataclasses.replace(domain, name="", description="")


def test_random_camera_is_reproducible_from_its_seed():
    a, b = get_domain("random:5"), get_domain("random:5")
    assert a == b == random_domain(5) and a.name == "random:5" and a.description.startswith("random camera 5:")
    pairs = [a.make_pair(_small_source(), np.random.default_rng(3)) for _ in range(2)]
    assert all(np.array_equal(x, y) for x, y in zip(*pairs))


def test_random_cameras_of_different_seeds_differ():
    assert len({_settings(random_domain(seed)) for seed in range(50)}) == 50


def test_random_cameras_span_the_priors():
    cameras = [random_domain(seed) for seed in range(200)]
    blurs, tones = Counter(d.blur for d in cameras), Counter(d.tone for d in cameras)
    assert set(blurs) == {"none", "linear", "motion", "shake", "defocus", "gaussian"} and blurs["none"] >= 5, blurs
    assert len(tones) == 5 and min(tones.values()) >= 20, tones
    for has, share in [(lambda d: d.jpeg_quality is not None, (0.35, 0.65)),
                       (lambda d: d.chroma_subsample, (0.15, 0.45)),
                       (lambda d: d.lens != "none", (0.1, 0.35)),
                       (lambda d: d.exposure[1] < 1.0, (0.15, 0.45)),
                       (lambda d: d.highlight_gain[0] > 1.0, (0.15, 0.45)),
                       (lambda d: d.denoise[1] > 0.0, (0.25, 0.55)),
                       (lambda d: d.sharpen[1] > 0.0 and d.sharpen_sigma != (1.2, 1.2), (0.35, 0.65))]:
        assert share[0] < np.mean([has(d) for d in cameras]) < share[1]
    assert not any(d.chroma_subsample and d.jpeg_quality for d in cameras)  # JPEG is 4:2:0 already
    photons = [d.photons_at_white[0] for d in cameras]
    assert min(photons) < 400 and max(photons) > 12000  # heavy to clean noise
    assert max(d.margin for d in cameras) <= 40


def test_random_cameras_make_pairs_within_their_margins():
    for seed in range(50):
        d = random_domain(seed)
        sharp, blurry = d.make_pair(_small_source(), np.random.default_rng(seed))  # raises if a kernel exceeds
        assert sharp.shape == blurry.shape == (96 - 2 * d.margin, 96 - 2 * d.margin, 3), d.description
        for draw in range(5):
            assert max(d.sample(np.random.default_rng(draw))["kernel"].shape) // 2 <= d.margin, d.description


def test_bad_random_seed_names_the_option():
    for name in ("random:abc", "random:-1", "random:", "random:1.5"):
        with pytest.raises(UserError, match=r"random:SEED takes a whole number") as err:
            get_domain(name)
        assert "\n" not in str(err.value)


def test_parse_cameras_expands_seed_ranges():
    assert parse_cameras("shake, defocus,random:0-2,random:07") == [
        "shake", "defocus", "random:0", "random:1", "random:2", "random:7"]
    assert parse_cameras("random:4-4") == ["random:4"]
    for spec, why in [("shake,gopro", "unknown blur domain"), ("random:3-1", "backwards"), ("shake,", "empty"),
                      ("random:a-3", "whole number")]:
        with pytest.raises(UserError, match=why):
            parse_cameras(spec)


def test_summary_lists_the_random_family():
    assert dict(domain_summary())["random:SEED"]
