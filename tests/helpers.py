"""Small real fixtures shared by tests: videos written with OpenCV, torch-free ONNX bundles, random weights,
folders of blurry/sharp pairs."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

B2B_RUN = str(Path(sys.executable).parent / "b2b-run")  # the installed console scripts, as a user runs them
B2B_EVAL = str(Path(sys.executable).parent / "b2b-eval")
B2B_BENCH = str(Path(sys.executable).parent / "b2b-bench")


def assert_one_line_error(result, match: str) -> None:
    """A failed command (subprocess.CompletedProcess) that said one line, `error: ...` naming `match`."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert match in lines[0], lines[0]


def write_video(path: Path, frames: int = 6, width: int = 64, height: int = 48, fps: float = 25.0) -> list[np.ndarray]:
    """An mp4 (mp4v) of smooth gradients that survive compression; returns the frames written."""
    yy, xx = np.mgrid[0:height, 0:width]
    written = []
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(frames):
        frame = np.stack([(xx * 4 + i * 10) % 256, yy * 4 % 256, np.full_like(xx, 40 + 20 * i)], -1).astype(np.uint8)
        writer.write(frame)
        written.append(frame)
    writer.release()
    return written


def noisy_video(path: Path, frames: int, size: tuple[int, int] = (96, 64)) -> None:
    """A video that compresses badly (random noise): it needs real space on disk."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()


def read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def write_frame_bundle(folder: Path, invert: bool = True, shape: list | None = None,
                       shapes: dict | None = None) -> Path:
    """A bundle whose graph inverts uint8 NHWC frames (255 - x), or passes them through (`invert=False`), built
    with onnx.helper: no torch needed.

    `shape` fixes the graph's input shape (default: dynamic batch, height and width); `shapes` ({"min", "max",
    "opt"} as NHWC lists) goes into meta.json as the bounds the runtime must keep.
    """
    from onnx import TensorProto, helper

    node = helper.make_node("Sub", ["white", "frames"], ["restored"]) if invert else \
        helper.make_node("Identity", ["frames"], ["restored"])
    white = [helper.make_tensor("white", TensorProto.UINT8, [], [255])] if invert else []
    return write_graph_bundle(folder, [node], white, shape, shapes)


def write_graph_bundle(folder: Path, nodes: list, initializers: list, shape: list | None = None,
                       shapes: dict | None = None) -> Path:
    """A bundle of any graph from uint8 NHWC `frames` to uint8 `restored` (onnx.helper nodes and initializers)."""
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)
    shape = shape or ["batch", "height", "width", 3]
    graph = helper.make_graph(
        nodes,
        "frames",
        [helper.make_tensor_value_info("frames", TensorProto.UINT8, shape)],
        [helper.make_tensor_value_info("restored", TensorProto.UINT8, shape)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    from blur2blur.runtime.bundle import sha256

    io = {"name": "frames", "layout": "NHWC", "dtype": "uint8", "color": "BGR"}
    meta = {"format": "blur2blur-bundle/1", "precisions": ["fp32"], "input": io, "output": {**io, "name": "restored"},
            "artefacts": {"model.onnx": {"sha256": sha256(folder / "model.onnx"), "precision": "fp32"}},
            **({"shapes": shapes} if shapes else {})}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def randomized(model, seed: int = 0, scale: float = 0.05):
    """`model` in eval mode with every parameter drawn from N(0, scale) (beta/gamma too, so every branch counts)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * scale)
    return model.eval()


def pair_folder(root: Path, count: int = 12, size: int = 48, bad_files: bool = True, seed: int = 0,
                boxes: tuple[tuple[int, int], ...] = ((7, 1),)) -> Path:
    """blur/ + sharp/ pairs NNN.png of smooth random textures, pair i blurred by the box boxes[i % len(boxes)]
    (width, height; by default 7 pixels along x). With `bad_files`, also what users have: a truncated file
    (000), a pair of two sizes (001) and a blurry image alone."""
    rng = np.random.default_rng(seed)
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        sharp = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (3, 3), 0)
        cv2.imwrite(str(root / "sharp" / f"{i:03d}.png"), sharp)
        cv2.imwrite(str(root / "blur" / f"{i:03d}.png"), cv2.blur(sharp, boxes[i % len(boxes)]))
    if not bad_files:
        return root
    (root / "blur" / "000.png").write_bytes((root / "blur" / "000.png").read_bytes()[:100])  # truncated
    cv2.imwrite(str(root / "blur" / "001.png"), np.zeros((20, 20, 3), np.uint8))  # another size than its twin
    cv2.imwrite(str(root / "blur" / "orphan.png"), np.zeros((size, size, 3), np.uint8))  # no sharp partner
    return root


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve `folder` over HTTP on the loopback interface; yields the base URL (http://127.0.0.1:PORT)."""
    import functools
    import http.server
    import threading

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def fill(folder: Path, leave: int = 0) -> None:
    """Fill `folder`'s file system until at most `leave` bytes are free."""
    import shutil

    with open(folder / "filler", "wb") as f:
        while shutil.disk_usage(folder).free > leave:
            try:
                f.write(b"\0" * max(4096, min(1 << 16, shutil.disk_usage(folder).free - leave)))
                f.flush()
            except OSError:
                break
