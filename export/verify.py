"""Check an exported graph in ONNX Runtime: FP32 against PyTorch, FP16 against FP32, on real photo content."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from blur2blur.errors import UserError

log = logging.getLogger(__name__)
FP32_MAX_ERROR, FP32_MIN_PSNR = 1, 50.0  # grey levels, dB
FP16_MIN_PSNR = 40.0
FP16_EXTREME_MIN_PSNR = 30.0  # overflow (NaN, Inf) in an FP16 graph shows as garbage far below this
SIZES = ((37, 53), (135, 241), (96, 128))  # odd sizes on purpose; the last one as a batch of two


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 arrays, capped at 100 for identical ones."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else min(100.0, float(10.0 * np.log10(255.0**2 / mse)))


def photo_batches() -> list[np.ndarray]:
    """Real photo content (scikit-image's bundled photos), as uint8 BGR batches at the verification sizes."""
    from skimage import data

    photos = [cv2.cvtColor(image, cv2.COLOR_RGB2BGR) for image in (data.astronaut(), data.coffee())]
    batches = []
    for (height, width), photo in zip(SIZES, photos * 2):
        crop = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        batches.append(crop[None] if (height, width) != SIZES[-1] else np.stack([crop, crop[::-1].copy()]))
    return batches


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess, frames: np.ndarray) -> np.ndarray:
    return sess.run(None, {sess.get_inputs()[0].name: frames})[0]


def verify_fp32(model: torch.nn.Module, onnx_path: Path) -> dict:
    """ORT vs PyTorch on real content at several sizes; UserError unless every size is within 1 level and 50 dB."""
    sess = session(onnx_path)
    figures = []
    for frames in photo_batches():
        with torch.no_grad():
            expected = model(torch.from_numpy(frames)).numpy()
        got = run(sess, frames)
        if got.shape != frames.shape or got.dtype != np.uint8:
            raise UserError(f"verification failed: {onnx_path.name} returned {got.shape} {got.dtype} for {frames.shape} uint8")
        error = int(np.abs(got.astype(np.int16) - expected.astype(np.int16)).max())
        figures.append({"shape": list(frames.shape), "max_abs_error": error, "psnr_db": round(psnr(got, expected), 2)})
    worst = {"max_abs_error": max(f["max_abs_error"] for f in figures), "psnr_db": min(f["psnr_db"] for f in figures)}
    log.debug("FP32 graph vs PyTorch: max error %d grey levels, PSNR %.1f dB", worst["max_abs_error"], worst["psnr_db"])
    if worst["max_abs_error"] > FP32_MAX_ERROR or worst["psnr_db"] < FP32_MIN_PSNR:
        raise UserError(f"verification failed: {onnx_path.name} differs from PyTorch by {worst['max_abs_error']} grey levels, "
                        f"{worst['psnr_db']:.1f} dB (limits {FP32_MAX_ERROR}, {FP32_MIN_PSNR} dB); nothing was written")
    return {**worst, "sizes": figures}


def extreme_frames(height: int = 1080, width: int = 1920) -> dict[str, np.ndarray]:
    """Inputs that overflow careless FP16 graphs: all white, all black, saturated high-contrast noise."""
    noise = np.random.default_rng(0).integers(0, 2, (1, height, width, 3), dtype=np.uint8) * 255
    return {
        "white": np.full((1, height, width, 3), 255, np.uint8),
        "black": np.zeros((1, height, width, 3), np.uint8),
        "noise": noise,
    }


def verify_fp16(fp32_path: Path, fp16_path: Path) -> dict:
    """FP16 graph vs FP32 graph: PSNR on real content, and sane output on extreme 1920 x 1080 frames."""
    reference, half = session(fp32_path), session(fp16_path)
    content = min(psnr(run(half, frames), run(reference, frames)) for frames in photo_batches())
    extremes = {name: round(psnr(run(half, frames), run(reference, frames)), 2) for name, frames in extreme_frames().items()}
    log.debug("FP16 graph vs FP32 graph: %.1f dB on photos; extremes %s", content, extremes)
    worst_extreme = min(extremes.values())
    if content < FP16_MIN_PSNR or worst_extreme < FP16_EXTREME_MIN_PSNR:
        raise UserError(f"verification failed: {fp16_path.name} is {content:.1f} dB from the FP32 graph on photos "
                        f"(limit {FP16_MIN_PSNR} dB) and {worst_extreme:.1f} dB on extreme frames "
                        f"(limit {FP16_EXTREME_MIN_PSNR} dB); nothing was written")
    return {"psnr_vs_fp32_db": round(content, 2), "extreme_frames_psnr_db": extremes}
