"""Camera model: sRGB curves, sensor noise statistics, clipping, tone, sharpening, chroma, JPEG."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blur2blur.data.blur import camera
from blur2blur.data.blur.deadleaves import dead_leaves


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def test_srgb_curves_are_exact_inverses_with_the_standard_values():
    v = np.linspace(0.0, 1.0, 2001, dtype=np.float32)
    np.testing.assert_allclose(camera.linear_to_srgb(camera.srgb_to_linear(v)), v, atol=2e-6)
    assert camera.srgb_to_linear(np.float32(0.5)) == pytest.approx(0.214041, abs=1e-5)
    assert camera.linear_to_srgb(np.float32(0.18)) == pytest.approx(0.461356, abs=1e-5)
    # the two pieces meet: no jump at the threshold
    assert camera.srgb_to_linear(np.float32(0.04045)) == pytest.approx(0.04045 / 12.92, rel=1e-5)
    assert camera.srgb_to_linear(np.float32(0.040451)) == pytest.approx(0.04045 / 12.92, rel=1e-4)


def test_noiseless_srgb_camera_reproduces_an_8bit_image_exactly():
    image = dead_leaves(48, np.random.default_rng(0))
    out = camera.Camera().capture(camera.bgr8_to_linear(image), np.random.default_rng(0))
    assert out.dtype == np.uint8 and np.array_equal(out, image)


@pytest.mark.parametrize("level", [0.02, 0.2, 0.7])
def test_sensor_noise_is_poisson_gaussian_in_variance(level):
    photons, read = 800.0, 0.01
    flat = np.full((256, 256), level, np.float32)
    noisy = camera.add_sensor_noise(flat, np.random.default_rng(1), photons, read)
    assert float(noisy.mean()) == pytest.approx(level, abs=0.002)
    assert float(noisy.var()) == pytest.approx(level / photons + read**2, rel=0.06)


def test_sensor_noise_is_reproducible_from_the_generator():
    flat = np.full((32, 32, 3), 0.3, np.float32)
    a = camera.add_sensor_noise(flat, np.random.default_rng(5), 1000, 0.002)
    b = camera.add_sensor_noise(flat, np.random.default_rng(5), 1000, 0.002)
    c = camera.add_sensor_noise(flat, np.random.default_rng(6), 1000, 0.002)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_highlights_are_boosted_then_clipped_like_a_sensor():
    x = np.array([0.2, 0.9, 0.95, 1.0], np.float32)
    boosted = camera.boost_highlights(x, 4.0)
    np.testing.assert_allclose(boosted[:2], x[:2])  # below the threshold nothing changes
    assert boosted[3] == pytest.approx(4.0)
    assert 0.95 < boosted[2] < 4.0
    np.testing.assert_allclose(camera.saturate(np.array([-0.1, 0.3, 0.6]), 2.0), [0.0, 0.6, 1.0], atol=1e-6)


def test_filmic_tone_is_an_s_curve_around_srgb():
    lin = camera.srgb_to_linear(np.linspace(0, 1, 101, dtype=np.float32))
    srgb, film = camera.linear_to_srgb(lin), camera.filmic_tone(lin)
    assert np.all(np.diff(film) > 0)
    np.testing.assert_allclose(film[[0, 50, 100]], [0.0, 0.5, 1.0], atol=1e-4)
    assert np.all(film[10:45] < srgb[10:45]) and np.all(film[56:90] > srgb[56:90])


@pytest.mark.parametrize("tone", list(camera.TONE_CURVES))
def test_every_tone_curve_rises_from_black_to_white(tone):
    v = camera.TONE_CURVES[tone](np.linspace(0, 1, 1001, dtype=np.float32))
    assert v.dtype == np.float32 and np.all(np.diff(v) > 0)
    np.testing.assert_allclose(v[[0, -1]], [0.0, 1.0], atol=1e-4)


def test_gamma_rec709_and_punchy_curves_have_their_standard_values():
    x = np.array([0.01, 0.18, 0.5], np.float32)
    np.testing.assert_allclose(camera.gamma_tone(x), x ** (1 / 2.2), rtol=1e-5)
    np.testing.assert_allclose(camera.rec709_tone(x)[0], 0.045, rtol=1e-5)  # the linear toe
    np.testing.assert_allclose(camera.rec709_tone(x)[1], 1.099 * 0.18**0.45 - 0.099, rtol=1e-5)
    lin = camera.srgb_to_linear(np.array([0.3, 0.7], np.float32))
    film, punchy = camera.filmic_tone(lin), camera.punchy_tone(lin)
    assert punchy[0] < film[0] and punchy[1] > film[1]  # a steeper S


def test_chroma_subsampling_halves_colour_resolution_but_keeps_luma():
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, ::2] = (40, 200, 90)
    image[:, 1::2] = (200, 60, 160)  # colour changing every pixel: lost at 4:2:0
    out = camera.chroma_subsample_420(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    before, after = (cv2.cvtColor(x, cv2.COLOR_BGR2YCrCb).astype(float) for x in (image, out))
    assert np.abs(before[:, :, 0] - after[:, :, 0]).max() <= 1  # luma keeps every pixel
    assert np.ptp(after[:, :, 1:], axis=(0, 1)).max() <= 1  # colour averaged over each 2 x 2 block
    assert np.abs(before[:, :, 1:] - after[:, :, 1:]).mean() > 20


def test_unsharp_mask_sharpens_and_denoise_smooths():
    rng = np.random.default_rng(2)
    edge = np.zeros((32, 32, 3), np.float32)
    edge[:, 16:] = 0.8
    edge += 0.1
    sharpened = camera.unsharp_mask(edge, 1.0, 1.0)
    assert sharpened[:, 17].mean() > 0.9 and sharpened[:, 14].mean() < 0.1  # overshoot at the edge
    noisy = np.clip(0.5 + rng.normal(0, 0.03, (64, 64, 3)), 0, 1).astype(np.float32)
    assert camera.smooth_denoise(noisy, 0.1).std() < 0.5 * noisy.std()


def test_jpeg_changes_the_image_but_keeps_it_close():
    # softened like a photo: raw dead leaves are all edges, the worst case for JPEG
    image = cv2.GaussianBlur(dead_leaves(96, np.random.default_rng(3), texture=0.0), (0, 0), 1.0)
    q90, q30 = camera.jpeg_roundtrip(image, 90), camera.jpeg_roundtrip(image, 30)
    assert q30.shape == image.shape and q30.dtype == np.uint8
    assert not np.array_equal(q90, image)
    assert _psnr(q30, image) > 24.0
    assert _psnr(q90, image) > _psnr(q30, image) + 3.0


def test_camera_rejects_an_unknown_tone_curve():
    with pytest.raises(ValueError, match="srgb"):
        camera.Camera(tone="log")
