"""Named, seeded blur domains: the known blur the deblurrer learns, and unknown cameras it should not.

A domain turns a sharp 8-bit image into the blurry image a particular camera would record: blur in
linear light (the kernel integrates light), then the camera model (noise, clipping, tone, JPEG).
`known` is a broad, GoPro-like family (smooth camera motion in every direction, a clean camera): a
deblurrer trained on it does little harm on other blur. `CAMERAS` are the unknown cameras it does not
handle, each a different blur or processing. `horizontal` and `vertical` are narrow families a tiny
deblurrer learns in a minute (tests and quick checks use them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from blur2blur.errors import UserError
from blur2blur.train import kernels
from blur2blur.train.camera import Camera, bgr8_to_linear, boost_highlights

Range = tuple[float, float]


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    lo, hi = bounds
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def _log_uniform(rng: np.random.Generator, bounds: Range) -> float:
    lo, hi = bounds
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) if hi > lo else float(lo)


@dataclass(frozen=True)
class Domain:
    """A blur family plus a camera, each parameter drawn uniformly from its range per image.

    `blur` is "linear" (`blur_px` = length, `angle_deg` its direction, 0 = horizontal), "motion"
    (smooth camera motion: a gently curving path `blur_px` long), "shake" (a jerky hand-shake path
    `blur_px` long) or "defocus" (`blur_px` = disk radius). `exposure` below 1
    is a dark capture brightened again by a digital gain of 1 / exposure; `highlight_gain` above 1
    makes near-white pixels brighter than white before the blur, so they clip as streaks.
    `margin` is the largest kernel radius (plus ISP filter reach): the context a crop needs.
    """

    name: str
    description: str
    margin: int
    blur: str
    blur_px: Range
    angle_deg: Range = (0.0, 0.0)
    highlight_gain: Range = (1.0, 1.0)
    exposure: Range = (1.0, 1.0)
    photons_at_white: Range = (4000.0, 16000.0)  # log-uniform
    read_noise: Range = (0.0002, 0.001)
    tone: str = "srgb"
    denoise: Range = (0.0, 0.0)
    sharpen: Range = (0.0, 0.0)
    jpeg_quality: tuple[int, int] | None = None

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Random degradation parameters for one image: plain JSON values, plus the `kernel` array."""
        params: dict[str, Any] = {"domain": self.name, "blur": self.blur}
        extent = _uniform(rng, self.blur_px)
        if self.blur == "linear":
            angle = _uniform(rng, self.angle_deg)
            params.update(length_px=extent, angle_deg=angle)
            kernel = kernels.linear_motion(extent, angle)
        elif self.blur == "motion":
            params.update(length_px=extent)
            kernel = kernels.camera_motion(rng, extent)
        elif self.blur == "shake":
            params.update(length_px=extent)
            kernel = kernels.shake_trajectory(rng, extent)
        elif self.blur == "defocus":
            params.update(radius_px=extent)
            kernel = kernels.defocus_disk(extent)
        else:
            raise ValueError(f"domain {self.name}: unknown blur kind {self.blur!r}")
        exposure = _uniform(rng, self.exposure)
        params.update(
            highlight_gain=_uniform(rng, self.highlight_gain),
            exposure=exposure,
            gain=1.0 / exposure,
            photons_at_white=_log_uniform(rng, self.photons_at_white),
            read_noise=_uniform(rng, self.read_noise),
            tone=self.tone,
            denoise=_uniform(rng, self.denoise),
            sharpen=_uniform(rng, self.sharpen),
            jpeg_quality=None if self.jpeg_quality is None else int(rng.integers(*self.jpeg_quality, endpoint=True)),
        )
        params["kernel"] = kernel
        return params

    def camera(self, params: dict[str, Any]) -> Camera:
        """The camera settings that `params` describe."""
        return Camera(
            exposure=params["exposure"],
            gain=params["gain"],
            photons_at_white=params["photons_at_white"],
            read_noise=params["read_noise"],
            tone=params["tone"],
            denoise=params["denoise"],
            sharpen=params["sharpen"],
            sharpen_sigma=1.2,
            jpeg_quality=params["jpeg_quality"],
        )

    def apply(self, sharp_bgr: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """The blurry uint8 BGR image (same size) this camera records of `sharp_bgr`; `rng` draws the noise.

        Pixels within `margin` of the border see replicated borders; crop them (see `make_pair`).
        """
        radiance = bgr8_to_linear(sharp_bgr)
        if params["highlight_gain"] > 1.0:
            radiance = boost_highlights(radiance, params["highlight_gain"])
        blurred = kernels.convolve(radiance, params["kernel"])
        return self.camera(params).capture(blurred, rng)

    def make_pair(
        self, sharp_with_margin_bgr: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sample, apply, and crop `margin` pixels off every side: an aligned (sharp, blurry) uint8 pair.

        The sharp image is the input as this camera renders it without blur or noise (its tone curve;
        identical to the input for sRGB domains).
        """
        image = sharp_with_margin_bgr
        m = self.margin
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"make_pair needs an H x W x 3 uint8 image, got {image.dtype} {image.shape}")
        if min(image.shape[:2]) <= 2 * m:
            raise ValueError(
                f"domain {self.name} needs images over {2 * m} px a side (margin {m}), got {image.shape[:2]}"
            )
        params = self.sample(rng)
        kh, kw = params["kernel"].shape
        if max(kh, kw) // 2 > m:  # a bug in the domain table, not bad input
            raise RuntimeError(f"domain {self.name}: kernel {kh}x{kw} exceeds margin {m}")
        blurry = self.apply(image, params, rng)
        sharp = self.camera(params).render_sharp(image)
        return sharp[m:-m, m:-m].copy(), blurry[m:-m, m:-m].copy()

    def render(self, image_bgr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(sharp, blurry) of a whole image as this camera renders it, its border mirrored for the kernel."""
        m = self.margin
        return self.make_pair(cv2.copyMakeBorder(image_bgr, m, m, m, m, cv2.BORDER_REFLECT_101), rng)


def describe_params(params: dict[str, Any]) -> dict[str, Any]:
    """`params` without the kernel array (its shape instead): ready for json.dumps."""
    out = {k: v for k, v in params.items() if k != "kernel"}
    out["kernel_shape"] = list(params["kernel"].shape)
    return out


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain(
            name="known",
            description="the known blur (GoPro-like): smooth camera motion 4-14 px in every direction, clean sensor",
            margin=15,
            blur="motion",
            blur_px=(4.0, 14.0),
        ),
        Domain(
            name="shake",
            description="hand shake: jerky trajectories 16-32 px with sudden turns, noise",
            margin=33,
            blur="shake",
            blur_px=(16.0, 32.0),
            photons_at_white=(1000.0, 4000.0),
            read_noise=(0.001, 0.003),
        ),
        Domain(
            name="defocus",
            description="lens defocus: disk of radius 2-6 px, mild noise",
            margin=7,
            blur="defocus",
            blur_px=(2.0, 6.0),
        ),
        Domain(
            name="lowlight",
            description="night shot: 5-15 % exposure with digital gain, strong shot and read noise, shake 3-8 px",
            margin=9,
            blur="shake",
            blur_px=(3.0, 8.0),
            highlight_gain=(2.0, 4.0),
            exposure=(0.05, 0.15),
            photons_at_white=(2000.0, 6000.0),
            read_noise=(0.002, 0.004),
        ),
        Domain(
            name="phone",
            description="phone video: motion 7-15 px vertical/diagonal, denoise, sharpen, filmic tone, JPEG q 30-50",
            margin=16,  # kernel 8 + bilateral 2 + unsharp 4, rounded up to 16: JPEG blocks align with the crop
            blur="linear",
            blur_px=(7.0, 15.0),
            angle_deg=(35.0, 145.0),
            photons_at_white=(1000.0, 3000.0),
            read_noise=(0.002, 0.004),
            tone="filmic",
            denoise=(0.06, 0.12),
            sharpen=(0.6, 1.2),
            jpeg_quality=(30, 50),
        ),
        Domain(
            name="streaks",
            description="street lights at night: camera motion 6-14 px, highlights 4-12x over white clip as streaks",
            margin=15,
            blur="motion",
            blur_px=(6.0, 14.0),
            highlight_gain=(4.0, 12.0),
            photons_at_white=(1500.0, 5000.0),
            read_noise=(0.001, 0.003),
        ),
        Domain(
            name="horizontal",
            description="narrow: linear motion 9-13 px within 15 deg of horizontal, mild noise (tests, quick checks)",
            margin=8,
            blur="linear",
            blur_px=(9.0, 13.0),
            angle_deg=(-15.0, 15.0),
        ),
        Domain(
            name="vertical",
            description="narrow: `horizontal` turned upright, linear motion 9-13 px within 15 deg of vertical",
            margin=8,
            blur="linear",
            blur_px=(9.0, 13.0),
            angle_deg=(75.0, 105.0),
        ),
    )
}
# The unknown cameras: blur or processing the `known` deblurrer does not handle (benchmarks run these).
CAMERAS = ("shake", "defocus", "lowlight", "phone", "streaks")


def get_domain(name: str) -> Domain:
    """The domain called `name`; UserError naming the known ones otherwise."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise UserError(f"unknown blur domain {name!r}; choose one of: {', '.join(DOMAINS)}") from None


def domain_summary() -> list[tuple[str, str]]:
    """(name, description) of every domain, for CLI help."""
    return [(d.name, d.description) for d in DOMAINS.values()]
