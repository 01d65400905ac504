"""The bundle's graph in OpenVINO on the CPU, where the CPU's matrix units (AMX, AVX512-BF16) run it in bf16.

model.onnx (the FP32 graph) is read directly and compiled once per frame shape: static shapes run 20-40 % faster
than a dynamic graph on the CPU, and OpenVINO's model cache keeps the compiled blobs for later runs. Before
compiling, NAFNet's channels-last LayerNorms are rewritten to normalise over channels (`fold_transposed_norms`).
Two infer requests per shape are used in turn, so one batch is staged while the other computes. The first time
a bundle runs at a precision on this machine, its output is checked against ONNX Runtime FP32
(`check_accuracy`); the figure is kept in the cache and reported. Torch-free; openvino is imported when an
engine is made.
"""

from __future__ import annotations

import importlib
import json
import logging
import platform
from pathlib import Path

import numpy as np

from blur2blur.errors import UserError, one_line
from blur2blur.files.atomic import write_atomic
from blur2blur.files.cache import user_cache_dir
from blur2blur.quality import psnr
from blur2blur.runtime.bundle import Bundle, DamagedGraph, ShapeBounds, sha256

log = logging.getLogger(__name__)
SLOTS = 2  # one request is filled while the other computes
HINTS = {"fp32": "f32", "bf16": "bf16"}  # --precision -> OpenVINO's INFERENCE_PRECISION_HINT
MIN_PSNR, EXTREME_MIN_PSNR = 40.0, 30.0  # dB against ONNX Runtime FP32, as for a TensorRT engine
GATE_SIZE = (256, 384)  # height, width of the check's frames, moved inside the bundle's bounds


def unavailable_reason() -> str | None:
    """Why OpenVINO cannot run here (a short line saying what to do), None when it can."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"the OpenVINO backend is for x86-64 CPUs, and this is {platform.machine()}"
    try:
        importlib.import_module("openvino")
    except ImportError:
        return "openvino is not installed here (pip install 'blur2blur[runtime]' on an x86-64 machine)"
    except Exception as err:  # installed, but its libraries do not load
        return f"openvino does not load here ({one_line(err)}): reinstall it"
    return None


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/blur2blur/openvino (~/.cache/... by default): compiled blobs and accuracy checks."""
    return user_cache_dir("openvino")


def cpu_precision(core) -> str:
    """bf16 where the CPU computes it natively (AMX or AVX512-BF16), else fp32."""
    return "bf16" if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "fp32"


def cpu_name(core) -> str:
    return str(core.get_property("CPU", "FULL_DEVICE_NAME"))


class _Pending:
    """One submission; result() waits for it and returns a copy of the restored frames."""

    def __init__(self, request) -> None:
        self._request, self._frames = request, None

    def result(self) -> np.ndarray:
        if self._frames is None:
            self._request.wait()
            self._frames = self._request.get_output_tensor(0).data.copy()  # the request's buffer is reused
        return self._frames


class _Shape:
    """A frame shape's compiled model and its requests, used in turn."""

    def __init__(self, compiled) -> None:
        self.compiled = compiled
        self.requests = [compiled.create_infer_request() for _ in range(SLOTS)]
        self.pending: list[_Pending | None] = [None] * SLOTS
        self.turn = 0


class OpenVinoEngine:
    """The bundle's model.onnx compiled by OpenVINO for the CPU, `SLOTS` requests in flight."""

    depth = SLOTS
    why = ""  # set by open_engine
    device = "cpu"

    def __init__(self, bundle: Bundle, precision: str | None = None, cache_dir: str | Path | None = None) -> None:
        reason = unavailable_reason()
        if reason:
            raise UserError(f"the OpenVINO backend cannot run here: {reason}")
        import openvino as ov
        from openvino.frontend import FrontEndManager

        self._core = ov.Core()
        precision = precision or cpu_precision(self._core)
        if precision not in HINTS:
            raise UserError(f"--precision {precision}: OpenVINO on the CPU runs {' or '.join(HINTS)}")
        if precision == "bf16" and cpu_precision(self._core) != "bf16":
            raise UserError("--precision bf16: this CPU has no bf16 units (AMX or AVX512-BF16); use fp32")
        self.precision, self.bundle = precision, bundle
        self.cache = Path(cache_dir) if cache_dir else default_cache_dir()
        try:
            (self.cache / "blobs").mkdir(parents=True, exist_ok=True)
            self._core.set_property({"CACHE_DIR": str(self.cache / "blobs")})
        except OSError as err:  # a read-only home: compile on every run instead
            log.warning("OpenVINO: cannot keep compiled models in %s (%s): compiling them on every run",
                        self.cache, one_line(err))
        path = bundle.onnx_path("fp32")
        try:  # the ONNX reader alone: Core.read_model would also try other formats' readers, which print
            onnx_reader = FrontEndManager().load_by_framework("onnx")
            self._model = onnx_reader.convert(onnx_reader.load(str(path)))
        except Exception as err:  # OpenVINO's own types for a damaged or unsupported graph
            raise DamagedGraph(f"{path}: OpenVINO cannot load it ({one_line(err)[:160]}); the file is damaged or "
                               "incomplete: export the bundle again") from None
        self._shapes: dict[tuple[int, ...], _Shape] = {}
        self.graph_shape = [d.get_length() if d.is_static else None for d in self._model.inputs[0].get_partial_shape()]
        self.version = ov.get_version().split("-")[0]
        self.name = f"openvino {'.'.join(self.version.split('.')[:2])} (CPU, {precision}, model.onnx)"
        self.verification = check_accuracy(self)

    def _compiled(self, shape: tuple[int, ...]) -> _Shape:
        if shape not in self._shapes:
            if any(fixed not in (None, size) for fixed, size in zip(self.graph_shape, shape)):
                raise UserError(f"frames of shape {list(shape)} do not fit this bundle's graph, which takes "
                                f"{self.graph_shape} (NHWC): resize them, or export the bundle again for their size")
            model = self._model.clone()
            model.reshape({model.inputs[0]: list(shape)})
            fold_transposed_norms(model)
            config = {"INFERENCE_PRECISION_HINT": HINTS[self.precision], "PERFORMANCE_HINT": "LATENCY"}
            try:
                compiled = self._core.compile_model(model, "CPU", config)
            except Exception as err:  # noqa: BLE001 -- OpenVINO raises plain RuntimeError with its reasons
                raise UserError(f"OpenVINO cannot compile {self.bundle.path}/model.onnx for frames {list(shape)} "
                                f"({one_line(err)[:160]}); run with --backend onnxruntime") from None
            self._shapes[shape] = _Shape(compiled)
        return self._shapes[shape]

    def submit(self, frames: np.ndarray) -> _Pending:
        """Start restoring uint8 N x H x W x 3 BGR frames; returns at once."""
        if self._shapes is None:
            raise RuntimeError("OpenVinoEngine.submit() after close()")
        slots = self._compiled(tuple(int(d) for d in frames.shape))
        turn = slots.turn
        slots.turn = (turn + 1) % SLOTS
        if slots.pending[turn] is not None:
            slots.pending[turn].result()  # more than `depth` in flight: keep that output before reusing the request
        request = slots.requests[turn]
        request.start_async({0: frames}, share_inputs=False)  # copied: the caller may reuse `frames`
        slots.pending[turn] = _Pending(request)
        return slots.pending[turn]

    def close(self) -> None:
        """Wait for what is in flight and free the compiled models; earlier results stay readable."""
        if self._shapes is None:
            return
        for slots in self._shapes.values():
            for pending in slots.pending:
                if pending is not None:
                    pending.result()
        self._shapes = None
        self._model = None


def _constant(output) -> np.ndarray | None:
    node = output.get_node()
    return node.get_data() if node.get_type_name() == "Constant" else None


def _only_user(node, kind: str):
    """The one node that consumes `node`'s output when it is of type `kind`, else None."""
    users = list(node.output(0).get_target_inputs())
    return users[0].get_node() if len(users) == 1 and users[0].get_node().get_type_name() == kind else None


def fold_transposed_norms(model) -> int:
    """Normalise over the channel axis in place of Transpose -> MVN(last axis) -> Multiply -> Add -> Transpose back;
    returns how many were rewritten.

    NAFNet's LayerNorm2d is exported channels-last (a LayerNormalization op between two transposes) so that
    TensorRT recognises it; OpenVINO's CPU plugin runs each transpose as a copy, a fifth of the starter's time in
    bf16. Needs static shapes (after `reshape`): constant folding first turns the normalised axes into constants.
    """
    from openvino import opset13 as ops
    from openvino.passes import ConstantFolding, Manager

    folding = Manager()
    folding.register_pass(ConstantFolding())
    folding.run_passes(model)
    rewritten = 0
    for norm in model.get_ordered_ops():
        if norm.get_type_name() != "MVN":
            continue
        into, axes = norm.input_value(0).get_node(), _constant(norm.input_value(1))
        scale = _only_user(norm, "Multiply")
        shift = scale and _only_user(scale, "Add")
        back = shift and _only_user(shift, "Transpose")
        if not (back and into.get_type_name() == "Transpose" and axes is not None
                and axes.ravel().tolist() in ([3], [-1]) and _constant(into.input_value(1)).tolist() == [0, 2, 3, 1]
                and _constant(back.input_value(1)).tolist() == [0, 3, 1, 2]):
            continue
        weight, bias = _constant(scale.input_value(1)), _constant(shift.input_value(1))
        if weight is None or bias is None:
            continue
        per_channel = (1, weight.size, 1, 1)
        attrs = norm.get_attributes()
        normalised = ops.mvn(into.input_value(0), ops.constant(np.array([1], np.int64)), attrs["normalize_variance"],
                             attrs["eps"], attrs["eps_mode"])
        scaled = ops.multiply(normalised, ops.constant(weight.reshape(per_channel).astype(np.float32)))
        back.output(0).replace(ops.add(scaled, ops.constant(bias.reshape(per_channel).astype(np.float32))).output(0))
        rewritten += 1
    model.validate_nodes_and_infer_types()
    return rewritten


def check_size(bounds: ShapeBounds | None, graph_shape: list[int | None]) -> tuple[int, int]:
    """(height, width) of the check's frames: `GATE_SIZE` moved inside the bundle's bounds, or the graph's own
    size where its input has a fixed one (`graph_shape` is NHWC, None for a dynamic dimension)."""
    size = list(GATE_SIZE)
    for i in range(2):
        if bounds is not None:
            size[i] = min(max(size[i], bounds.min[i]), bounds.max[i])
        size[i] = graph_shape[1 + i] or size[i]
    return size[0], size[1]


def check_frames(height: int, width: int) -> dict[str, np.ndarray]:
    """Frames for the accuracy check: seeded photo-like content (soft gradients, overlapping disks with edges,
    fine texture and grain), and all white, all black and saturated noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    content = np.stack([60 + 120 * xx / width, 60 + 120 * yy / height, np.full_like(xx, 110)], -1)
    for _ in range(60):
        y, x, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(3, max(4, min(height, width) / 5))
        inside = (yy - y) ** 2 + (xx - x) ** 2 < r * r
        content[inside] = rng.uniform(0, 255, 3) + 30 * np.sin(xx[inside, None] * rng.uniform(0.2, 1.5))
    content += rng.normal(0, 4, content.shape)
    noise = rng.integers(0, 2, (1, height, width, 3), dtype=np.uint8) * 255
    return {"content": np.clip(content, 0, 255).astype(np.uint8)[None], "white": np.full_like(noise, 255),
            "black": np.zeros_like(noise), "noise": noise}


def check_accuracy(engine: OpenVinoEngine) -> dict:
    """The engine's output against ONNX Runtime FP32 on `check_frames`, once per bundle graph, OpenVINO version,
    CPU and precision (the result is kept in the cache); UserError when it is below the limits."""
    key = "-".join([sha256(engine.bundle.onnx_path("fp32"))[:16], engine.version, engine.precision,
                    "".join(c if c.isalnum() else "_" for c in cpu_name(engine._core))])
    record = engine.cache / "checks" / f"{key}.json"
    try:
        figures = json.loads(record.read_text())
        if figures.get("psnr_db", 0) >= MIN_PSNR and figures.get("extreme_psnr_db", 0) >= EXTREME_MIN_PSNR:
            return {**figures, "cached": True}
    except (OSError, ValueError):
        pass  # not checked yet (or an unreadable record): check again
    from blur2blur.runtime.engines import OnnxRuntimeEngine, infer

    log.debug("OpenVINO %s: checking its output against ONNX Runtime FP32", engine.precision)
    reference = OnnxRuntimeEngine(engine.bundle.onnx_path("fp32"), ["CPUExecutionProvider"])
    try:
        scores = {name: psnr(infer(engine, frames), infer(reference, frames))
                  for name, frames in check_frames(*check_size(engine.bundle.bounds, engine.graph_shape)).items()}
    finally:
        reference.close()
    figures = {"psnr_db": round(scores.pop("content"), 2), "extreme_psnr_db": round(min(scores.values()), 2),
               "against": "onnxruntime fp32 (model.onnx)", "precision": engine.precision}
    if figures["psnr_db"] < MIN_PSNR or figures["extreme_psnr_db"] < EXTREME_MIN_PSNR:
        other = " or --precision fp32" if engine.precision != "fp32" else ""
        raise UserError(f"OpenVINO {engine.precision} output is {figures['psnr_db']:.1f} dB from ONNX Runtime FP32 "
                        f"({figures['extreme_psnr_db']:.1f} dB on extreme frames; limits {MIN_PSNR:.0f} and "
                        f"{EXTREME_MIN_PSNR:.0f} dB): run with --backend onnxruntime{other}")
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(record, (json.dumps(figures, indent=2) + "\n").encode())
    except OSError as err:  # a read-only cache costs the check again next time, nothing else
        log.warning("could not keep the accuracy check in %s (%s)", record, one_line(err))
    return {**figures, "cached": False}
