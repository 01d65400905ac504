"""Check an exported graph in ONNX Runtime: FP32 against PyTorch, FP16 against FP32, a TensorRT engine against
ONNX Runtime, all on real photo content at sizes inside the bundle's shape bounds."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from blur2blur.errors import UserError
from blur2blur.quality import psnr
from blur2blur.runtime.bundle import ShapeBounds

log = logging.getLogger(__name__)
FP32_MAX_ERROR, FP32_MIN_PSNR = 1, 50.0  # grey levels, dB
FP16_MIN_PSNR = 40.0
FP16_EXTREME_MIN_PSNR = 30.0  # overflow (NaN, Inf) in an FP16 graph shows as garbage far below this
ENGINE_MIN_PSNR, ENGINE_EXTREME_MIN_PSNR = 40.0, 30.0  # TensorRT kernels (TF32, FP16 sums) vs ONNX Runtime
ODD_SIZES = ((37, 53), (135, 241))  # padded inside the graph; moved into the bounds (odd where they allow)
BATCH_SIZE = (96, 128)  # a multiple of 16 (no padding), run as a batch of two where the bounds allow
EXTREME_SIZE = (1080, 1920)


def verification_shapes(bounds: ShapeBounds) -> list[tuple[int, int, int]]:
    """(batch, height, width) to verify at: two or more sizes inside the bounds, odd ones where they allow."""
    sizes = list(dict.fromkeys(bounds.fit(h, w, odd=True) for h, w in ODD_SIZES))
    middle = bounds.fit((bounds.min[0] + bounds.max[0]) // 2, (bounds.min[1] + bounds.max[1]) // 2, odd=True)
    for extra in (middle, bounds.min, bounds.max):  # a narrow range: its middle, else its ends
        if len(sizes) < 2 and extra not in sizes:
            sizes.append(extra)
    return [(1, h, w) for h, w in sizes] + [(min(2, bounds.batch), *bounds.fit(*BATCH_SIZE))]


def _photos() -> list[np.ndarray]:
    from skimage import data

    return [cv2.cvtColor(image, cv2.COLOR_RGB2BGR) for image in (data.astronaut(), data.coffee())]


def photo_batches(bounds: ShapeBounds) -> list[np.ndarray]:
    """Real photo content (scikit-image's bundled photos) as uint8 BGR batches at the verification shapes."""
    photos = _photos()
    batches = []
    for i, (batch, height, width) in enumerate(verification_shapes(bounds)):
        frames = [cv2.resize(photos[(i + j) % len(photos)], (width, height), interpolation=cv2.INTER_AREA)
                  for j in range(batch)]
        batches.append(np.stack(frames))
    return batches


def extreme_frames(bounds: ShapeBounds) -> dict[str, np.ndarray]:
    """Inputs that overflow careless FP16 graphs, 1920 x 1080 (or the nearest size the bounds allow):
    all white, all black, saturated high-contrast noise."""
    height, width = bounds.fit(*EXTREME_SIZE)
    noise = np.random.default_rng(0).integers(0, 2, (1, height, width, 3), dtype=np.uint8) * 255
    return {
        "white": np.full((1, height, width, 3), 255, np.uint8),
        "black": np.zeros((1, height, width, 3), np.uint8),
        "noise": noise,
    }


def session(model: Path | bytes):
    """A CPU ONNX Runtime session for a graph file or serialized graph; UserError when it does not load."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                    providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 -- ONNX Runtime raises its own types for corrupt or unsupported graphs
        name = "the graph" if isinstance(model, bytes) else Path(model).name
        raise UserError(f"ONNX Runtime cannot load {name}: {' '.join(str(err).split())[:300]}") from None


def run(sess, frames: np.ndarray) -> np.ndarray:
    return sess.run(None, {sess.get_inputs()[0].name: frames})[0]


def _check_output(got: np.ndarray, frames: np.ndarray, name: str) -> None:
    if got.shape != frames.shape or got.dtype != np.uint8:
        raise UserError(f"verification failed: {name} returned {got.shape} {got.dtype} for {frames.shape} uint8")


def verify_fp32(model: torch.nn.Module, onnx_path: Path, bounds: ShapeBounds) -> dict:
    """ORT vs PyTorch on real content at several sizes; UserError unless every size is within 1 level and 50 dB."""
    sess = session(onnx_path)
    figures = []
    for frames in photo_batches(bounds):
        with torch.no_grad():
            expected = model(torch.from_numpy(frames)).numpy()
        got = run(sess, frames)
        _check_output(got, frames, onnx_path.name)
        error = int(np.abs(got.astype(np.int16) - expected.astype(np.int16)).max())
        figures.append({"shape": list(frames.shape), "max_abs_error": error, "psnr_db": round(psnr(got, expected), 2)})
    worst = {"max_abs_error": max(f["max_abs_error"] for f in figures), "psnr_db": min(f["psnr_db"] for f in figures)}
    log.debug("FP32 graph vs PyTorch: max error %d grey levels, PSNR %.1f dB", worst["max_abs_error"], worst["psnr_db"])
    if worst["max_abs_error"] > FP32_MAX_ERROR or worst["psnr_db"] < FP32_MIN_PSNR:
        raise UserError(f"verification failed: {onnx_path.name} differs from PyTorch by "
                        f"{worst['max_abs_error']} grey levels, "
                        f"{worst['psnr_db']:.1f} dB (limits {FP32_MAX_ERROR}, {FP32_MIN_PSNR} dB); nothing was written")
    return {**worst, "sizes": figures}


FP16_MAX = 65504.0  # the largest finite FP16 value


MOVES_VALUES = {"Transpose", "Reshape", "Slice", "Split", "DepthToSpace", "SpaceToDepth", "Concat", "Pad", "Gather",
                "Unsqueeze", "Squeeze", "Identity", "Flatten"}  # their outputs hold only values probed before


def with_range_probes(onnx_path: Path) -> bytes:
    """The graph with more outputs: the float result before it is clamped to uint8 (a NaN anywhere inside
    ends there; the uint8 output would hide it), then the max and min of every FP16 tensor a node computes.

    ONNX Runtime on the CPU computes most FP16 nodes in FP32 (it inserts casts), so an FP16 overflow would
    not happen here; the FP16 maxima (Inf beyond 65504) show whether it would on a GPU, where each such
    tensor is stored in FP16. Each probe follows its tensor's node, so no tensor is kept alive longer.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_path))
    clips = [node for node in model.graph.node if node.op_type == "Clip"]
    if len(clips) != 1:
        raise UserError(f"verification failed: {onnx_path.name} has {len(clips)} Clip nodes, expected the one "
                        "before the uint8 output")
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in onnx.shape_inference.infer_shapes(model).graph.value_info}
    raw = clips[0].input[0]
    outputs = [helper.make_tensor_value_info(raw, types.get(raw, TensorProto.FLOAT16), None)]
    nodes = []
    for node in model.graph.node:
        nodes.append(node)
        if node.op_type in MOVES_VALUES:
            continue
        for name in (n for n in node.output if types.get(n) == TensorProto.FLOAT16):
            for reduce in ("ReduceMax", "ReduceMin"):
                probe = f"{name}_{reduce}_probe"
                nodes.append(helper.make_node(reduce, [name], [probe], keepdims=0))
                outputs.append(helper.make_tensor_value_info(probe, TensorProto.FLOAT16, []))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.output.extend(outputs)
    return model.SerializeToString()


def verify_fp16(fp32_path: Path, fp16_path: Path, bounds: ShapeBounds) -> dict:
    """FP16 graph vs FP32 graph: PSNR on real content; on extreme 1920 x 1080 frames, sane output, nothing
    NaN or Inf and every FP16 tensor within the FP16 range."""
    reference, half, probed = session(fp32_path), session(fp16_path), session(with_range_probes(fp16_path))
    sizes = []
    for frames in photo_batches(bounds):
        got = run(half, frames)
        _check_output(got, frames, fp16_path.name)
        sizes.append({"shape": list(frames.shape), "psnr_vs_fp32_db": round(psnr(got, run(reference, frames)), 2)})
    content = min(s["psnr_vs_fp32_db"] for s in sizes)
    extremes = {}
    for name, frames in extreme_frames(bounds).items():
        got, raw, *probes = probed.run(None, {probed.get_inputs()[0].name: frames})
        peak = float(np.abs(np.array(probes, np.float32)).max())
        extremes[name] = {"psnr_vs_fp32_db": round(psnr(got, run(reference, frames)), 2),
                          "finite": bool(np.isfinite(raw).all() and np.isfinite(peak) and peak <= FP16_MAX),
                          "max_abs_activation": round(peak, 2) if np.isfinite(peak) else None}
    log.debug("FP16 graph vs FP32 graph: %.1f dB on photos; extremes %s", content, extremes)
    worst_extreme = min(e["psnr_vs_fp32_db"] for e in extremes.values())
    not_finite = [name for name, e in extremes.items() if not e["finite"]]
    if content < FP16_MIN_PSNR or worst_extreme < FP16_EXTREME_MIN_PSNR or not_finite:
        raise UserError(f"verification failed: {fp16_path.name} is {content:.1f} dB from the FP32 graph on photos "
                        f"(limit {FP16_MIN_PSNR} dB) and {worst_extreme:.1f} dB on extreme frames "
                        f"(limit {FP16_EXTREME_MIN_PSNR} dB); NaN, Inf or values beyond FP16 on: "
                        f"{', '.join(not_finite) or 'none'}; nothing was written")
    shape = next(iter(extreme_frames(bounds).values())).shape
    return {"psnr_vs_fp32_db": content, "sizes": sizes, "extreme_shape": list(shape), "extreme_frames": extremes}


def run_engine(engine_path: Path, batches: list[np.ndarray], input_name: str, output_name: str) -> list[np.ndarray]:
    """Run a serialized TensorRT engine on uint8 NHWC batches, with device buffers from PyTorch's CUDA."""
    import tensorrt as trt

    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_path.read_bytes())
    if engine is None:
        raise UserError(f"TensorRT cannot load {engine_path}: built by another TensorRT version or for another GPU")
    context = engine.create_execution_context()
    stream = torch.cuda.Stream()  # not the legacy default stream, on which TensorRT syncs the device around each run
    outputs = []
    with torch.cuda.stream(stream):  # the copies and allocations below go on it too, in order with the engine
        for frames in batches:
            inputs = torch.from_numpy(np.ascontiguousarray(frames)).cuda()
            if not context.set_input_shape(input_name, tuple(frames.shape)):
                raise UserError(f"TensorRT: {list(frames.shape)} frames are outside the profile of {engine_path.name}")
            result = torch.empty(tuple(context.get_tensor_shape(output_name)), dtype=torch.uint8, device="cuda")
            for name, tensor in ((input_name, inputs), (output_name, result)):
                if not context.set_tensor_address(name, tensor.data_ptr()):
                    raise UserError(f"TensorRT refused the address of tensor {name!r} of {engine_path.name}")
            if not context.execute_async_v3(stream.cuda_stream):
                raise UserError(f"TensorRT could not run {engine_path.name} on {frames.shape} frames")
            stream.synchronize()
            outputs.append(result.cpu().numpy())
    return outputs


def verify_engine(engine_path: Path, onnx_path: Path, bounds: ShapeBounds, input_name: str, output_name: str) -> dict:
    """The TensorRT engine vs ONNX Runtime running the graph it was built from, on the same photo and extreme frames."""
    reference = session(onnx_path)
    photos, extremes = photo_batches(bounds), list(extreme_frames(bounds).values())
    outputs = run_engine(engine_path, photos + extremes, input_name, output_name)
    for frames, got in zip(photos + extremes, outputs):
        _check_output(got, frames, engine_path.name)
    content = min(psnr(got, run(reference, f)) for f, got in zip(photos, outputs))
    extreme = min(psnr(got, run(reference, f)) for f, got in zip(extremes, outputs[len(photos):]))
    if content < ENGINE_MIN_PSNR or extreme < ENGINE_EXTREME_MIN_PSNR:
        raise UserError(f"verification failed: the TensorRT engine is {content:.1f} dB from ONNX Runtime on photos "
                        f"(limit {ENGINE_MIN_PSNR} dB), {extreme:.1f} dB on extreme frames "
                        f"(limit {ENGINE_EXTREME_MIN_PSNR} dB); nothing was written")
    return {"psnr_db": round(content, 2), "extreme_psnr_db": round(extreme, 2), "against": onnx_path.name}
