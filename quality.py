"""Image-quality figures on 8-bit images (H x W x 3 uint8) and the rules built on them (do no harm; the
no-pairs score that picks a converter), without torch.

PSNR and SSIM are computed on all three colour channels, as the deblurring papers report them; both are the
same for RGB and BGR. SSIM is scikit-image's, with the Gaussian window of Wang et al. (sigma 1.5, population
covariances), which is what MATLAB's `ssim` and the papers' evaluation scripts compute.
"""

from __future__ import annotations

import numpy as np

SSIM_MIN_SIDE = 11  # the Gaussian window's size (sigma 1.5, truncated at 3.5 sigma)


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 arrays of one shape (images, batches), capped at 100 dB."""
    _check(image, reference)
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else min(100.0, float(10.0 * np.log10(255.0**2 / mse)))


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Structural similarity of 8-bit colour images, the mean over channels (scikit-image's implementation)."""
    from skimage.metrics import structural_similarity

    _check(image, reference)
    return float(structural_similarity(image, reference, channel_axis=2, data_range=255, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


def _check(image: np.ndarray, reference: np.ndarray) -> None:
    if image.shape != reference.shape or image.dtype != np.uint8 or reference.dtype != np.uint8:
        raise ValueError(f"quality figures need two uint8 arrays of one shape, got {image.dtype} {image.shape} "
                         f"and {reference.dtype} {reference.shape}")


def harm_warning(restored_psnr: float, blurry_psnr: float, what: str = "restoration") -> str | None:
    """A plain warning when `what` leaves frames worse (lower mean PSNR) than the blurry input, with what to do
    about it; None when it helps."""
    if restored_psnr >= blurry_psnr:
        return None
    return (f"WARNING: {what} makes these frames worse than the blurry input ({restored_psnr - blurry_psnr:+.2f} dB): "
            "do not deploy it for this camera as it is; train the converter longer or on more of the camera's "
            "images, fine-tune the deblurrer on pairs of the camera (b2b-train deblurrer --init), or leave "
            "the frames as they are")


NOREF_MARGIN = 0.02  # slope-gap points a G must gain over the deblurrer alone to be kept (bench/selection.py)
NOREF_HARM_DB = 1.0  # the most a kept G may cost the camera's own known-blur frames after the deblurrer (dB)


def no_pairs_score(figures: dict[str, float]) -> float:
    """What best.pt keeps without pairs: 0 for the identity (no G); a G is kept above 0 only. A G scores how much
    closer the fall of detail and noise from scale to scale (`slope_gap`) of its deblurred output comes to that of
    the deblurred known-blur frames of the camera than the deblurrer alone does, less a margin; below 0 where it
    costs the camera's known-blur frames more than NOREF_HARM_DB after the deblurrer (chosen on random cameras with
    bench/selection.py)."""
    if figures["probe_psnr_converted"] >= 100:  # G leaves its input as it is (8-bit): the identity
        return 0.0
    gain = figures["slope_gap_deblurred"] - figures["slope_gap"] - NOREF_MARGIN
    harm = figures.get("known_psnr_alone", 0.0) - figures.get("known_psnr_after", 0.0)
    if harm > NOREF_HARM_DB:
        return min(gain, 0.0) - harm
    return gain
