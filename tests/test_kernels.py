"""Blur kernels: normalisation, geometry, orientation, and true convolution."""

from __future__ import annotations

import numpy as np
import pytest

from blur2blur.data.blur import kernels


def _moments(kernel: np.ndarray) -> tuple[float, float, float, float]:
    """Centre of mass (x, y) relative to the centre pixel, and variance along x and y."""
    h, w = kernel.shape
    ys, xs = np.mgrid[0:h, 0:w]
    xs, ys = xs - w // 2, ys - h // 2
    mx, my = float((kernel * xs).sum()), float((kernel * ys).sum())
    return mx, my, float((kernel * (xs - mx) ** 2).sum()), float((kernel * (ys - my) ** 2).sum())


ALL_KERNELS = [
    ("linear 9 @ 0", lambda: kernels.linear_motion(9, 0)),
    ("linear 2.3 @ 37", lambda: kernels.linear_motion(2.3, 37)),
    ("linear 12.6 @ -100", lambda: kernels.linear_motion(12.6, -100)),
    ("shake 8", lambda: kernels.shake_trajectory(np.random.default_rng(1), 8)),
    ("shake 24", lambda: kernels.shake_trajectory(np.random.default_rng(2), 24)),
    ("shake 15 half exposure", lambda: kernels.shake_trajectory(np.random.default_rng(3), 15, exposure=0.5)),
    ("camera motion 4", lambda: kernels.camera_motion(np.random.default_rng(4), 4)),
    ("camera motion 13.5", lambda: kernels.camera_motion(np.random.default_rng(5), 13.5)),
    ("disk 0.7", lambda: kernels.defocus_disk(0.7)),
    ("disk 4.5", lambda: kernels.defocus_disk(4.5)),
    ("gaussian 1.3", lambda: kernels.gaussian(1.3)),
    ("shake 10 + disk 1.2", lambda: kernels.combine(kernels.shake_trajectory(np.random.default_rng(6), 10),
                                                    kernels.defocus_disk(1.2))),
]


@pytest.mark.parametrize("name, make", ALL_KERNELS, ids=[n for n, _ in ALL_KERNELS])
def test_kernels_are_normalised_odd_and_centred(name, make):
    k = make()
    assert k.dtype == np.float32 and k.ndim == 2
    assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
    assert abs(float(k.sum()) - 1.0) < 1e-5
    assert k.min() >= 0
    mx, my, _, _ = _moments(k)
    assert abs(mx) < 1e-3 and abs(my) < 1e-3, f"{name} shifts the image by ({mx:.4f}, {my:.4f})"


@pytest.mark.parametrize("make", [lambda: kernels.linear_motion(0, 30), lambda: kernels.defocus_disk(0),
                                  lambda: kernels.gaussian(0),
                                  lambda: kernels.shake_trajectory(np.random.default_rng(0), 0),
                                  lambda: kernels.camera_motion(np.random.default_rng(0), 0)])
def test_zero_size_blur_is_the_identity(make):
    assert make().tolist() == [[1.0]]


def test_linear_motion_has_the_requested_length_and_direction():
    k = kernels.linear_motion(9, 0)
    assert k.shape[0] == 1  # a horizontal line occupies one row
    _, _, var_x, _ = _moments(k)
    # a box of length L has variance L^2/12; bilinear splatting adds a tent's 1/6
    assert var_x == pytest.approx(9**2 / 12 + 1 / 6, rel=0.02)
    np.testing.assert_allclose(kernels.linear_motion(9, 90), k.T, atol=1e-6)
    # a sub-pixel change of length changes the kernel
    assert not np.allclose(kernels.linear_motion(9.4, 0).sum(axis=0)[:3], 0)


def test_linear_motion_at_45_degrees_runs_up_and_to_the_right():
    k = kernels.linear_motion(8, 45)
    c = k.shape[0] // 2
    # counter-clockwise from +x as displayed (y down): the upper-right quadrant carries weight
    assert k[c - 2, c + 2] > 0.05 and k[c - 2, c - 2] == 0


def test_horizontal_motion_blurs_a_vertical_edge_but_not_a_horizontal_one():
    vertical_edge = np.zeros((32, 32, 3), np.float32)
    vertical_edge[:, 16:] = 1.0
    horizontal_edge = np.ascontiguousarray(vertical_edge.transpose(1, 0, 2))
    k = kernels.linear_motion(9, 0)
    assert np.abs(kernels.convolve(vertical_edge, k) - vertical_edge).max() > 0.3
    np.testing.assert_allclose(kernels.convolve(horizontal_edge, k), horizontal_edge, atol=1e-6)


def test_convolve_is_a_true_convolution_not_a_correlation():
    rng = np.random.default_rng(0)
    k = rng.random((3, 5)).astype(np.float32)
    k[0, 0] = 5.0  # clearly asymmetric
    k /= k.sum()
    impulse = np.zeros((15, 15, 3), np.float32)
    impulse[7, 7] = 1.0
    out = kernels.convolve(impulse, k)
    for c in range(3):
        np.testing.assert_allclose(out[6:9, 5:10, c], k, atol=1e-6)
    assert not np.allclose(out[6:9, 5:10, 0], k[::-1, ::-1])


def test_convolve_replicates_the_border_and_keeps_shape_and_dtype():
    flat = np.full((20, 30, 3), 0.4, np.float32)
    out = kernels.convolve(flat, kernels.defocus_disk(5))
    assert out.shape == flat.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.4, atol=1e-5)
    gray = np.random.default_rng(0).random((16, 16))
    assert kernels.convolve(gray, kernels.gaussian(1)).shape == (16, 16)


def test_convolve_rejects_even_kernels_and_integer_images():
    with pytest.raises(ValueError):
        kernels.convolve(np.zeros((8, 8), np.float32), np.ones((2, 2), np.float32) / 4)
    with pytest.raises(ValueError):
        kernels.convolve(np.zeros((8, 8), np.uint8), kernels.gaussian(1))


def test_shake_trajectory_is_reproducible_and_sized_by_its_path_length():
    a = kernels.shake_trajectory(np.random.default_rng(7), 20)
    b = kernels.shake_trajectory(np.random.default_rng(7), 20)
    c = kernels.shake_trajectory(np.random.default_rng(8), 20)
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    for seed in range(20):
        k = kernels.shake_trajectory(np.random.default_rng(seed), 20)
        assert max(k.shape) // 2 <= 21  # never farther from the centre than the path is long
        assert max(k.shape) >= 5  # a 20 px path is not a dot
        assert (k > 0).sum() >= 10


def test_shorter_exposure_gives_a_smaller_shake_kernel():
    full = kernels.shake_trajectory(np.random.default_rng(3), 24)
    part = kernels.shake_trajectory(np.random.default_rng(3), 24, exposure=0.3)
    assert (part > 0).sum() < (full > 0).sum()
    with pytest.raises(ValueError):
        kernels.shake_trajectory(np.random.default_rng(3), 24, exposure=0)


def _span(kernel: np.ndarray) -> float:
    """The largest distance (px) between two pixels the kernel covers: how far the path got end to end."""
    ys, xs = np.nonzero(kernel > kernel.max() * 1e-3)
    points = np.stack([xs, ys], axis=1).astype(float)
    return float(np.sqrt(((points[:, None] - points[None]) ** 2).sum(axis=-1)).max())


def _thinness(kernel: np.ndarray) -> float:
    """Variance across the kernel's major axis over variance along it: 0 for a straight line."""
    mx, my, var_x, var_y = _moments(kernel)
    h, w = kernel.shape
    ys, xs = np.mgrid[0:h, 0:w]
    cov = float((kernel * (xs - w // 2 - mx) * (ys - h // 2 - my)).sum())
    low, high = np.linalg.eigvalsh(np.array([[var_x, cov], [cov, var_y]]))
    return float(low / high)


def test_camera_motion_is_smoother_than_shake():
    length = 20
    motion = [kernels.camera_motion(np.random.default_rng(seed), length) for seed in range(20)]
    shake = [kernels.shake_trajectory(np.random.default_rng(seed), length) for seed in range(20)]
    assert np.array_equal(motion[0], kernels.camera_motion(np.random.default_rng(0), length))  # reproducible
    # a gently curving path gets about as far as it is long, every time; a shake turns back on itself
    motion_span = [_span(k) / length for k in motion]
    shake_span = [_span(k) / length for k in shake]
    assert min(motion_span) > 0.9, motion_span
    assert np.mean(shake_span) < 0.8 and np.mean(shake_span) < np.mean(motion_span) - 0.2, shake_span
    # and it stays close to a line: little spread across its main direction
    assert max(_thinness(k) for k in motion) < 0.1
    assert np.mean([_thinness(k) for k in shake]) > 0.15
    assert max(max(k.shape) // 2 for k in motion) <= length + 1  # never farther out than the path is long


def test_defocus_disk_is_round_with_the_variance_of_a_disk():
    radius = 5.0
    k = kernels.defocus_disk(radius)
    _, _, var_x, var_y = _moments(k)
    assert var_x == pytest.approx(var_y, rel=1e-6)
    assert var_x == pytest.approx(radius**2 / 4, rel=0.05)
    np.testing.assert_allclose(k, k.T, atol=1e-7)
    assert k.shape == (11, 11)


def test_gaussian_has_the_requested_sigma():
    _, _, var_x, var_y = _moments(kernels.gaussian(2.0))
    assert var_x == pytest.approx(4.0, rel=0.05) and var_y == pytest.approx(4.0, rel=0.05)


def test_combine_is_the_convolution_of_the_two_kernels():
    line, blob = kernels.linear_motion(7, 0), kernels.gaussian(1.0)
    both = kernels.combine(line, blob)
    assert both.shape == (line.shape[0] + blob.shape[0] - 1, line.shape[1] + blob.shape[1] - 1)
    image = np.zeros((41, 41), np.float32)
    image[20, 20] = 1.0  # an impulse: blurring it twice draws the combined kernel
    twice = kernels.convolve(kernels.convolve(image, line), blob)
    h, w = both.shape
    np.testing.assert_allclose(twice[20 - h // 2 : 21 + h // 2, 20 - w // 2 : 21 + w // 2], both, atol=1e-6)
    np.testing.assert_allclose(kernels.combine(np.ones((1, 1), np.float32), blob), blob, atol=1e-7)
