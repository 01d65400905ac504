"""Named, seeded blur domains: the known blur the deblurrer learns, and unknown cameras it should not.

A domain turns a sharp 8-bit image into the blurry image a particular camera would record: blur in
linear light (the kernel integrates light), then the camera model (noise, clipping, tone, JPEG).
`known` is a broad, GoPro-like family (smooth camera motion in every direction, a clean camera): a
deblurrer trained on it does little harm on other blur. `CAMERAS` are the unknown cameras it does not
handle, each a different blur or processing. `horizontal` and `vertical` are narrow families a tiny
deblurrer learns in a minute (tests and quick checks use them). `random:SEED` is a camera drawn from broad
priors over what real cameras do (`random_domain`; the priors are in RANDOM_PRIORS): benchmarks run many.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from blur2blur.data.blur import kernels
from blur2blur.data.blur.camera import Camera, bgr8_to_linear, boost_highlights
from blur2blur.errors import UserError

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
    `blur_px` long), "defocus" (`blur_px` = disk radius), "gaussian" (`blur_px` = sigma: soft optics)
    or "none" (no blur). `lens` ("none", "gaussian" or "defocus", size `lens_px`) adds soft optics on
    top: the two kernels are convolved. `exposure` below 1
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
    lens: str = "none"
    lens_px: Range = (0.0, 0.0)
    highlight_gain: Range = (1.0, 1.0)
    exposure: Range = (1.0, 1.0)
    photons_at_white: Range = (4000.0, 16000.0)  # log-uniform
    read_noise: Range = (0.0002, 0.001)
    tone: str = "srgb"
    denoise: Range = (0.0, 0.0)
    sharpen: Range = (0.0, 0.0)
    sharpen_sigma: Range = (1.2, 1.2)
    chroma_subsample: bool = False
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
        elif self.blur == "gaussian":
            params.update(sigma_px=extent)
            kernel = kernels.gaussian(extent)
        elif self.blur == "none":
            kernel = np.ones((1, 1), np.float32)  # the identity: processing only
        else:
            raise ValueError(f"domain {self.name}: unknown blur kind {self.blur!r}")
        if self.lens != "none":
            size = _uniform(rng, self.lens_px)
            params.update(lens=self.lens, lens_px=size)
            kernel = kernels.combine(kernel, _lens_kernel(self.lens, size))
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
            sharpen_sigma=_uniform(rng, self.sharpen_sigma),
            chroma_subsample=self.chroma_subsample,
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
            sharpen_sigma=params["sharpen_sigma"],
            jpeg_quality=params["jpeg_quality"],
            chroma_subsample=params["chroma_subsample"],
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


def _lens_kernel(kind: str, size_px: float) -> np.ndarray:
    if kind == "gaussian":
        return kernels.gaussian(size_px)
    if kind == "defocus":
        return kernels.defocus_disk(size_px)
    raise ValueError(f"unknown lens softness {kind!r}")


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
            description="the known blur (GoPro-like): smooth camera motion 4-14 px in every direction, mild noise",
            margin=15,
            blur="motion",
            blur_px=(4.0, 14.0),
        ),
        Domain(
            name="still",
            description="the known camera held still: no blur, the same sensor (pairs that teach a deblurrer "
                        "to leave sharp frames alone)",
            margin=1,
            blur="none",
            blur_px=(0.0, 0.0),
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


# RANDOM_PRIORS: what `random_domain` draws once per camera, and why. The camera then varies each
# per-image parameter within the range drawn here (a narrow family, like the presets). "log-U" is
# log-uniform; "x (a, b)" is a range from a to b times the drawn centre.
#   blur kind         none 8 %, linear 14 %, motion 26 %, shake 26 %, defocus 13 %, gaussian 13 %:
#                     mostly camera motion, some pure optics, a few sharp cameras that only process
#   path length       linear, motion, shake: centre log-U(2, 20) px, x (0.75, 1.25): a steady grip to
#                     a long hand-held exposure; log, so short blur is as common as long
#   direction         linear: centre U(0, 180) deg, half-width U(5, 90): a mounted camera moves one way,
#                     a hand-held one any way (motion and shake draw a direction per image)
#   lens softness     35 % of linear/motion/shake cameras: gaussian sigma U(0.3, 0.8) or defocus radius
#                     U(0.5, 1.5) px, x (0.8, 1.2), convolved with the path: few lenses are perfectly sharp
#   defocus radius    centre log-U(1, 6) px, x (0.8, 1.2): slightly to clearly out of focus
#   gaussian sigma    centre log-U(0.5, 2.5) px, x (0.8, 1.2): soft optics, anti-alias filter, upscaling
#   exposure          30 %: centre log-U(0.06, 0.5), x (0.75, 1.25), brightened by a gain of 1 / exposure;
#                     else 1: dark scenes shot at a high ISO
#   photons at white  centre log-U(300, 30000), x (1/1.5, 1.5), log-U per image: tiny phone pixels to a
#                     clean large sensor (shot noise)
#   read noise        centre log-U(0.0003, 0.004) of white, x (0.75, 1.25): the noise floor in shadows
#   highlight gain    30 %: centre log-U(1.5, 10), x (0.75, 1.25); else 1: lamps and sky clip as streaks
#   tone              srgb, filmic, gamma, rec709 or punchy, equally likely: how the ISP renders
#   denoise           40 %: centre U(0.03, 0.12), x (0.7, 1.3); else 0: phones smear the noise away
#   sharpen           50 %: amount centre U(0.3, 1.5), x (0.7, 1.3), sigma centre U(0.6, 1.6),
#                     x (0.9, 1.1); else 0: ISP sharpening, its halos as wide as the sigma
#   JPEG              50 %: quality centre an integer U(25, 92), +- 8 within [10, 98]: stills and MJPEG
#                     (OpenCV's JPEG stores chroma at 4:2:0 already)
#   chroma 4:2:0      60 % of the cameras without JPEG: video codecs keep colour at half resolution
_BLUR_KINDS = ("none", "linear", "motion", "shake", "defocus", "gaussian")
_BLUR_WEIGHTS = (0.08, 0.14, 0.26, 0.26, 0.13, 0.13)
_RANDOM_TONES = ("srgb", "filmic", "gamma", "rec709", "punchy")  # listed here: seeds keep their camera
_RANDOM_TAG = 0x52414E44  # "RAND": keeps a camera's stream apart from per-image streams seeded [seed, index]
RANDOM_PREFIX = "random:"


def _centred(centre: float, spread: float) -> Range:
    return (centre * (1.0 - spread), centre * (1.0 + spread))


def _span(bounds: Range, digits: int = 0, scale: float = 1.0) -> str:
    return f"{bounds[0] * scale:.{digits}f}-{bounds[1] * scale:.{digits}f}"


def _kernel_reach(kind: str, size_px: float) -> int:
    """An upper bound on the radius of the kernel of blur `kind` at `size_px` (see kernels.py)."""
    if kind == "none":
        return 0
    if kind == "gaussian":
        return max(1, math.ceil(3.0 * size_px))
    if kind == "linear":
        return math.ceil(size_px / 2.0) + 1
    return math.ceil(size_px) + 1  # a path of that length (any shape), or a disk of that radius


def random_domain(seed: int) -> Domain:
    """The camera `random:SEED`: every setting drawn from RANDOM_PRIORS by a generator seeded with `seed`.

    The same seed gives the same camera. Spatially varying blur (rotation about the optical axis,
    rolling shutter) is not drawn: a domain blurs a whole image with one kernel.
    """
    if seed < 0:
        raise ValueError(f"a random camera's seed must be 0 or more, got {seed}")
    rng = np.random.default_rng([seed, _RANDOM_TAG])
    said: list[str] = []  # what was drawn, for the description

    blur = str(rng.choice(_BLUR_KINDS, p=_BLUR_WEIGHTS))
    blur_px, angle_deg, lens, lens_px = (0.0, 0.0), (0.0, 0.0), "none", (0.0, 0.0)
    if blur in ("linear", "motion", "shake"):
        blur_px = _centred(_log_uniform(rng, (2.0, 20.0)), 0.25)
        said.append(f"{blur} {_span(blur_px)} px")
        if blur == "linear":
            centre, half = float(rng.uniform(0.0, 180.0)), float(rng.uniform(5.0, 90.0))
            angle_deg = (centre - half, centre + half)
            said[-1] += f" at {centre:.0f} +- {half:.0f} deg"
        if rng.random() < 0.35:
            lens = str(rng.choice(("gaussian", "defocus")))
            lens_px = _centred(float(rng.uniform(0.3, 0.8) if lens == "gaussian" else rng.uniform(0.5, 1.5)), 0.2)
            said[-1] += f" + {lens} {_span(lens_px, 1)} px"
    elif blur == "defocus":
        blur_px = _centred(_log_uniform(rng, (1.0, 6.0)), 0.2)
        said.append(f"defocus radius {_span(blur_px, 1)} px")
    elif blur == "gaussian":
        blur_px = _centred(_log_uniform(rng, (0.5, 2.5)), 0.2)
        said.append(f"soft optics (gaussian sigma {_span(blur_px, 1)} px)")
    else:
        said.append("no blur")

    exposure = (1.0, 1.0)
    if rng.random() < 0.3:
        exposure = _centred(_log_uniform(rng, (0.06, 0.5)), 0.25)
        said.append(f"{_span(exposure, scale=100.0)} % exposure with digital gain")
    photons = _log_uniform(rng, (300.0, 30000.0))
    photons_at_white = (photons / 1.5, photons * 1.5)
    read_noise = _centred(_log_uniform(rng, (0.0003, 0.004)), 0.25)
    said.append(f"noise {_span(photons_at_white)} e- at white, read {_span(read_noise, 2, 100.0)} %")
    highlight_gain = (1.0, 1.0)
    if rng.random() < 0.3:
        highlight_gain = _centred(_log_uniform(rng, (1.5, 10.0)), 0.25)
        said.append(f"highlights {_span(highlight_gain, 1)}x white")

    tone = str(rng.choice(_RANDOM_TONES))
    said.append(f"{tone} tone")
    denoise = (0.0, 0.0)
    if rng.random() < 0.4:
        denoise = _centred(float(rng.uniform(0.03, 0.12)), 0.3)
        said.append(f"denoise {_span(denoise, 3)}")
    sharpen, sharpen_sigma = (0.0, 0.0), (1.2, 1.2)
    if rng.random() < 0.5:
        sharpen = _centred(float(rng.uniform(0.3, 1.5)), 0.3)
        sharpen_sigma = _centred(float(rng.uniform(0.6, 1.6)), 0.1)
        said.append(f"sharpen {_span(sharpen, 1)} (sigma {_span(sharpen_sigma, 1)} px)")
    jpeg_quality, chroma_subsample = None, False
    if rng.random() < 0.5:
        quality = int(rng.integers(25, 92, endpoint=True))
        jpeg_quality = (max(10, quality - 8), min(98, quality + 8))
        said.append(f"JPEG q {jpeg_quality[0]}-{jpeg_quality[1]}")
    elif rng.random() < 0.6:
        chroma_subsample = True
        said.append("4:2:0 chroma")

    reach = _kernel_reach(blur, blur_px[1]) + _kernel_reach(lens, lens_px[1])
    reach += 2 if denoise[1] > 0 else 0  # the 5 x 5 bilateral filter
    reach += math.ceil(3.0 * sharpen_sigma[1]) if sharpen[1] > 0 else 0
    reach += 1 if chroma_subsample else 0
    step = 8 if jpeg_quality else 2  # the crop starts on a JPEG block, or on a 2 x 2 chroma block
    margin = step * math.ceil(max(reach, 2) / step)
    return Domain(
        name=f"{RANDOM_PREFIX}{seed}",
        description=f"random camera {seed}: " + ", ".join(said),
        margin=margin,
        blur=blur,
        blur_px=blur_px,
        angle_deg=angle_deg,
        lens=lens,
        lens_px=lens_px,
        highlight_gain=highlight_gain,
        exposure=exposure,
        photons_at_white=photons_at_white,
        read_noise=read_noise,
        tone=tone,
        denoise=denoise,
        sharpen=sharpen,
        sharpen_sigma=sharpen_sigma,
        chroma_subsample=chroma_subsample,
        jpeg_quality=jpeg_quality,
    )


def _random_seed(name: str) -> int:
    seed = name[len(RANDOM_PREFIX) :]
    if not re.fullmatch(r"[0-9]+", seed):
        raise UserError(f"blur domain {name!r}: random:SEED takes a whole number 0 or more as SEED, e.g. random:7")
    return int(seed)


def get_domain(name: str) -> Domain:
    """The domain called `name`, a preset or `random:SEED`; UserError naming the choices otherwise."""
    if name.startswith(RANDOM_PREFIX):
        return random_domain(_random_seed(name))
    try:
        return DOMAINS[name]
    except KeyError:
        choices = ", ".join([*DOMAINS, f"{RANDOM_PREFIX}SEED"])
        raise UserError(f"unknown blur domain {name!r}; choose one of: {choices}") from None


def parse_cameras(spec: str) -> list[str]:
    """The domain names in a comma list such as "shake,defocus,random:0-11"; `random:A-B` stands for
    every camera from random:A to random:B. UserError on an unknown name or a backwards range."""
    names: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        seeds = re.fullmatch(RANDOM_PREFIX + r"([0-9]+)-([0-9]+)", item)
        if seeds:
            first, last = int(seeds[1]), int(seeds[2])
            if first > last:
                raise UserError(f"cameras {spec!r}: {item} runs backwards; write {RANDOM_PREFIX}{last}-{first}")
            names.extend(f"{RANDOM_PREFIX}{seed}" for seed in range(first, last + 1))
        elif not item:
            raise UserError(f"cameras {spec!r}: an empty name; separate names with single commas")
        else:
            try:
                names.append(get_domain(item).name)
            except UserError as err:
                raise UserError(f"cameras {spec!r}: {err}") from None
    return names


def domain_summary() -> list[tuple[str, str]]:
    """(name, description) of every domain, for CLI help."""
    return [(d.name, d.description) for d in DOMAINS.values()] + [
        (f"{RANDOM_PREFIX}SEED", "a random camera from broad priors (any blur or none, noise, tone, ISP, JPEG): "
                                 "the same SEED, the same camera")
    ]
