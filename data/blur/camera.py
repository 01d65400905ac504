"""A small camera model: sRGB curves, sensor noise and saturation in linear light, tone, 8 bits, JPEG.

Float images are in [0, 1] (linear light or tone-encoded, as each function says); 8-bit images are
H x W x 3 uint8 BGR. Randomness comes only from the `np.random.Generator` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """The exact sRGB decoding curve (IEC 61966-2-1): encoded [0, 1] to linear light [0, 1]."""
    v = np.clip(np.asarray(srgb, dtype=np.float32), 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """The exact sRGB encoding curve: linear light (clipped to [0, 1]) to encoded [0, 1]."""
    x = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055).astype(np.float32)


def filmic_tone(linear: np.ndarray, contrast: float = 1.4) -> np.ndarray:
    """sRGB encoding followed by an S-curve (deeper shadows, rolled-off highlights), as phones render.

    The curve v^c / (v^c + (1 - v)^c) keeps 0, 1/2 and 1 fixed and steepens the mid-tones by `contrast`.
    """
    v = linear_to_srgb(linear).astype(np.float64)
    a, b = v**contrast, (1.0 - v) ** contrast
    return (a / np.maximum(a + b, 1e-12)).astype(np.float32)


def gamma_tone(linear: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """A plain power law x^(1 / gamma) (no linear toe): slightly darker shadows than sRGB."""
    x = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return (x ** (1.0 / gamma)).astype(np.float32)


def rec709_tone(linear: np.ndarray) -> np.ndarray:
    """The BT.709 camera curve video cameras encode with: 4.5 x below 0.018, 1.099 x^0.45 - 0.099 above."""
    x = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return np.where(x < 0.018, 4.5 * x, 1.099 * x**0.45 - 0.099).astype(np.float32)


def punchy_tone(linear: np.ndarray) -> np.ndarray:
    """A stronger S-curve than `filmic` (contrast 1.8): the saturated, contrasty look of some phones."""
    return filmic_tone(linear, contrast=1.8)


TONE_CURVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "srgb": linear_to_srgb,
    "filmic": filmic_tone,
    "gamma": gamma_tone,
    "rec709": rec709_tone,
    "punchy": punchy_tone,
}


def bgr8_to_linear(image_bgr: np.ndarray) -> np.ndarray:
    """An 8-bit sRGB image as float32 linear light."""
    return srgb_to_linear(image_bgr.astype(np.float32) / 255.0)


def quantize_8bit(image: np.ndarray) -> np.ndarray:
    """A [0, 1] float image rounded to uint8 (values outside [0, 1] clip)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def boost_highlights(linear: np.ndarray, gain: float, threshold: float = 0.9) -> np.ndarray:
    """Scene radiance behind (nearly) clipped pixels: values above `threshold` ramp up to `gain` x.

    An 8-bit photo stores a lamp and a white wall both as 1.0; blurring the boosted radiance and
    clipping afterwards gives the long saturated streaks of real blurred highlights.
    """
    ramp = np.clip((linear - threshold) / max(1.0 - threshold, 1e-6), 0.0, 1.0)
    return (linear * (1.0 + (gain - 1.0) * ramp)).astype(np.float32)


def add_sensor_noise(
    linear: np.ndarray, rng: np.random.Generator, photons_at_white: float, read_noise: float
) -> np.ndarray:
    """Poisson shot noise (`photons_at_white` electrons at 1.0) plus Gaussian read noise (std, in
    units of white), in linear light; the variance at level x is x / photons_at_white + read_noise^2.

    The result is not clipped (read noise can go below 0); clip as the sensor would, afterwards.
    """
    if photons_at_white <= 0:
        raise ValueError(f"photons_at_white must be positive, got {photons_at_white}")
    electrons = rng.poisson(np.maximum(linear, 0.0) * photons_at_white)
    noisy = electrons / photons_at_white
    if read_noise > 0:
        noisy = noisy + rng.normal(0.0, read_noise, size=linear.shape)
    return noisy.astype(np.float32)


def saturate(linear: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Apply an exposure or digital `gain` and clip to [0, 1], as a sensor's full well and ADC do."""
    return np.clip(linear * gain, 0.0, 1.0).astype(np.float32)


def smooth_denoise(image: np.ndarray, strength: float) -> np.ndarray:
    """Edge-preserving smoothing (a 5 x 5 bilateral filter), the plasticky look of phone denoisers.

    `strength` is the colour sigma in [0, 1] units: differences well below it are averaged away.
    """
    if strength <= 0:
        return image
    return cv2.bilateralFilter(image.astype(np.float32), 5, float(strength), 1.5, borderType=cv2.BORDER_REPLICATE)


def unsharp_mask(image: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """Sharpen a [0, 1] float image: image + amount * (image - gaussian(image)), clipped to [0, 1]."""
    if amount <= 0:
        return image
    soft = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    return np.clip(image + amount * (image - soft), 0.0, 1.0).astype(np.float32)


def chroma_subsample_420(image_bgr: np.ndarray) -> np.ndarray:
    """An 8-bit BGR image with its colour stored at half resolution (4:2:0), as video codecs store it.

    Cr and Cb are area-averaged over 2 x 2 blocks and interpolated back; the luma keeps every pixel.
    """
    ycrcb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2YCrCb)
    h, w = ycrcb.shape[:2]
    chroma = cv2.resize(ycrcb[:, :, 1:], ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    ycrcb[:, :, 1:] = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR)


def jpeg_roundtrip(image_bgr: np.ndarray, quality: int) -> np.ndarray:
    """Encode an 8-bit BGR image as JPEG at `quality` (1-100) and decode it again."""
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


@dataclass(frozen=True)
class Camera:
    """One capture's settings: sensor (exposure, noise, full-well clip, gain) then ISP (tone, denoise,
    sharpen, 8 bits, 4:2:0 chroma, JPEG). `photons_at_white` 0 means noiseless; `jpeg_quality` None means
    no JPEG. OpenCV's JPEG already stores chroma at 4:2:0: `chroma_subsample` is for cameras without it."""

    exposure: float = 1.0
    gain: float = 1.0
    photons_at_white: float = 0.0
    read_noise: float = 0.0
    tone: str = "srgb"
    denoise: float = 0.0
    sharpen: float = 0.0
    sharpen_sigma: float = 1.0
    jpeg_quality: int | None = None
    chroma_subsample: bool = False

    def __post_init__(self) -> None:
        if self.tone not in TONE_CURVES:
            raise ValueError(f"unknown tone curve {self.tone!r}; known: {', '.join(TONE_CURVES)}")

    def capture(self, radiance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Linear-light radiance (may exceed 1) to the 8-bit BGR image this camera would store."""
        x = radiance * self.exposure
        if self.photons_at_white > 0:
            x = add_sensor_noise(x, rng, self.photons_at_white, self.read_noise)
        x = saturate(x)  # full well: the sensor clips first ...
        x = saturate(x, self.gain)  # ... then the digital gain clips again
        y = TONE_CURVES[self.tone](x)
        y = smooth_denoise(y, self.denoise)
        y = unsharp_mask(y, self.sharpen, self.sharpen_sigma)
        out = quantize_8bit(y)
        if self.chroma_subsample:
            out = chroma_subsample_420(out)
        if self.jpeg_quality is not None:
            out = jpeg_roundtrip(out, self.jpeg_quality)
        return out

    def render_sharp(self, image_bgr: np.ndarray) -> np.ndarray:
        """An 8-bit sRGB image re-rendered with this camera's tone curve only (no noise): unchanged for sRGB."""
        if self.tone == "srgb":
            return image_bgr
        return quantize_8bit(TONE_CURVES[self.tone](bgr8_to_linear(image_bgr)))
