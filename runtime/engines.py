"""Engines turn a batch of frames (uint8 N x H x W x 3 BGR) into restored frames of the same shape."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from blur2blur.errors import UserError
from blur2blur.runtime.bundle import Bundle

log = logging.getLogger(__name__)
BACKENDS = ("auto", "onnxruntime", "tensorrt")


class Engine(Protocol):
    name: str

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """uint8 N x H x W x 3 BGR in, the same out."""
        ...


class OnnxRuntimeEngine:
    """The fused graph in ONNX Runtime, on the best provider this machine has."""

    def __init__(self, onnx_path: Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        if providers is None:
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.name = f"onnxruntime ({self.session.get_providers()[0]}, {Path(onnx_path).name})"

    def infer(self, frames: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(frames)})[0]


def open_engine(bundle: Bundle, backend: str = "auto") -> Engine:
    """The engine for a bundle (ONNX Runtime with the best provider present)."""
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if backend == "tensorrt":
        # The TensorRT executor arrives with the runtime issue; until then `auto` means ONNX Runtime.
        raise UserError("--backend tensorrt: not available in this version yet; use --backend onnxruntime")
    return OnnxRuntimeEngine(bundle.onnx_path("fp32"))
