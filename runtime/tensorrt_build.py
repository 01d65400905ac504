"""Build a TensorRT engine from a bundle's ONNX graph, cached by graph, TensorRT version, GPU and precision.

No torch here: b2b-run reuses this module to build the engine on the target at first use. Needs TensorRT 10
or 11: the network is strongly typed, so the precision is the graph's own (model.fp16.onnx gives an FP16
engine with FP32 normalisation) and no precision flag is ever set; TensorRT 11 takes precision only from
the graph and has no BuilderFlag.FP16. TF32 is switched off, so FP32 layers compute in FP32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from blur2blur.errors import UserError
from blur2blur.files.atomic import write_atomic
from blur2blur.files.cache import user_cache_dir
from blur2blur.runtime.bundle import ONNX_NAMES, read_meta, sha256

log = logging.getLogger(__name__)
DEFAULT_WORKSPACE_BYTES = 2 << 30
MIN_TENSORRT = 10  # strongly typed, explicit-batch networks and the tensor-address API
BUILD_SETTINGS = "strongly typed, TF32 off"  # in the cache key, so engines built otherwise are rebuilt


@dataclass(frozen=True)
class EngineBuild:
    path: Path  # the serialized engine in the cache
    key: str  # cache key: ONNX sha256, TensorRT version, GPU name, precision, shapes
    version: str  # TensorRT version
    cached: bool  # True when an earlier build was reused


def tensorrt_version() -> str | None:
    """The installed TensorRT's version, None when `tensorrt` does not import."""
    try:
        import tensorrt as trt
    except ImportError:
        return None
    return trt.__version__


def tensorrt_too_old(version: str) -> str | None:
    """Why TensorRT `version` cannot build or run our engines (one line saying what to install), None when it can."""
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return None  # a build we cannot read: let TensorRT itself say what it lacks
    if major >= MIN_TENSORRT:
        return None
    return (f"TensorRT {version} is too old: blur2blur needs TensorRT {MIN_TENSORRT} or later "
            "(pip install 'blur2blur[trt]', or JetPack 6.1 or later on a Jetson)")


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/blur2blur/tensorrt (~/.cache/... by default)."""
    return user_cache_dir("tensorrt")


def cache_key(onnx_sha256: str, trt_version: str, gpu_name: str, precision: str, shapes: dict) -> str:
    """What an engine depends on, hashed: the graph, TensorRT's version, the GPU, the precision, the profile and
    the build settings."""
    fields = {"onnx": onnx_sha256, "tensorrt": trt_version, "gpu": gpu_name, "precision": precision,
              "shapes": {k: list(shapes[k]) for k in ("min", "opt", "max")}, "build": BUILD_SETTINGS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def build_engine(onnx_path: str | Path, input_name: str, shapes: dict, precision: str, gpu_name: str,
                 cache_dir: str | Path | None = None, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES) -> EngineBuild:
    """The engine for `onnx_path` with one optimisation profile (`shapes`: NHWC "min", "opt", "max"),
    built with a timing cache and a workspace limit, or reused from `cache_dir` when built before."""
    import tensorrt as trt

    too_old = tensorrt_too_old(trt.__version__)
    if too_old:
        raise UserError(too_old)
    onnx_path = Path(onnx_path)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    key = cache_key(sha256(onnx_path), trt.__version__, gpu_name, precision, shapes)
    engine_path = cache_dir / f"model.{precision}.{key}.engine"
    if engine_path.is_file():
        log.info("TensorRT engine from the cache: %s", engine_path)
        return EngineBuild(engine_path, key, trt.__version__, cached=True)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"TensorRT engine cache {cache_dir}: cannot write there ({err.strerror})") from None
    timing_path = cache_dir / f"timing-{_slug(trt.__version__)}-{_slug(gpu_name)}.cache"
    log.info("building the TensorRT %s engine for %s on %s (minutes on a Jetson)", precision, onnx_path.name, gpu_name)
    plan, timing = _build(trt, onnx_path, input_name, shapes, workspace_bytes, timing_path)
    write_atomic(engine_path, plan)
    write_atomic(timing_path, timing)  # also replaces a corrupt one
    return EngineBuild(engine_path, key, trt.__version__, cached=False)


def _build(trt, onnx_path: Path, input_name: str, shapes: dict, workspace_bytes: int,
           timing_path: Path) -> tuple[bytes, bytes]:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # Strongly typed: every layer runs in the graph's own type (so model.fp16.onnx gives the FP16 engine). Opted
    # into on TensorRT 10, always on (the flag accepted and ignored) on 11; networks are explicit-batch on both.
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(parser.get_error(i).desc() for i in range(parser.num_errors))
        raise UserError(f"TensorRT cannot parse {onnx_path}: {errors or 'corrupt or not an ONNX file'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    tf32 = getattr(trt.BuilderFlag, "TF32", None)
    if tf32 is not None:
        # On by default: FP32 convolutions would round their inputs to TF32 on Ampere and later (Orin too).
        # Clearing it is allowed on strongly typed networks, as it sets no tensor type.
        config.clear_flag(tf32)
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)
    _use_timing_cache(config, timing_path)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise UserError(f"TensorRT could not build an engine from {onnx_path.name} (its messages above say why)")
    return bytes(plan), bytes(config.get_timing_cache().serialize())


def _use_timing_cache(config, timing_path: Path) -> None:
    """Time the build with the timing cache in `timing_path`, or with a new one where there is none or it is
    corrupt or from another GPU or version (the caller writes the new one over it after the build)."""
    timing = timing_path.read_bytes() if timing_path.is_file() else b""
    if timing:
        try:
            cache = config.create_timing_cache(timing)
        except Exception:  # noqa: BLE001 -- TensorRT raises its own types for a truncated or garbled cache
            cache = None
        if cache is not None and config.set_timing_cache(cache, False):
            return
        log.warning("TensorRT timing cache %s is corrupt or from another GPU or version: starting a new one",
                    timing_path)
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, False):
        raise RuntimeError("TensorRT could not create an empty timing cache")


def build_for_bundle(bundle: str | Path, gpu_name: str, precision: str | None = None,
                     cache_dir: str | Path | None = None,
                     workspace_bytes: int = DEFAULT_WORKSPACE_BYTES) -> EngineBuild:
    """The engine for an export bundle on this GPU, from its meta.json (shapes, input name, precision).

    `precision` defaults to the bundle's; the cache defaults to `default_cache_dir()`.
    """
    bundle = Path(bundle)
    meta = read_meta(bundle)
    precision = precision or meta.get("precision", "fp32")
    if precision not in ONNX_NAMES or not (bundle / ONNX_NAMES[precision]).is_file():
        raise UserError(f"bundle {bundle} has no {precision} graph: export it again (with --fp16 for fp16)")
    if "shapes" not in meta:
        raise UserError(f"bundle {bundle} records no min/opt/max shapes: export it again with this version")
    recorded = meta["artefacts"].get(ONNX_NAMES[precision], {}).get("sha256")
    if recorded != sha256(bundle / ONNX_NAMES[precision]):
        raise UserError(f"bundle {bundle}: {ONNX_NAMES[precision]} does not match the sha256 in meta.json "
                        "(modified or corrupt): export it again")
    return build_engine(bundle / ONNX_NAMES[precision], meta["input"]["name"], meta["shapes"], precision, gpu_name,
                        cache_dir, workspace_bytes)
