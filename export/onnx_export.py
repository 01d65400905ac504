"""Export the fused deploy module to a verified bundle: model.onnx (+ model.fp16.onnx) and meta.json."""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from blur2blur.errors import UserError
from blur2blur.export.verify import verify_engine, verify_fp16, verify_fp32
from blur2blur.files.locks import Lock, beside
from blur2blur.models.checkpoint import load_checkpoint
from blur2blur.models.deploy import DeployModel, check_compatible
from blur2blur.models.nafnet import NAFNet, use_local_statistics
from blur2blur.runtime.bundle import BUNDLE_FORMAT, ONNX_NAMES, ShapeBounds, sha256
from blur2blur.runtime.tensorrt_build import DEFAULT_WORKSPACE_BYTES, build_engine, tensorrt_too_old, tensorrt_version

log = logging.getLogger(__name__)
OPSET = 17
INPUT, OUTPUT = "frames", "restored"
OFFICIAL_TRAINING_CROP = 256  # NAFNet's GoPro and REDS models train on 256 x 256 crops


def library_versions() -> dict[str, str]:
    versions = {}
    for name in ("blur2blur", "torch", "onnx", "onnxsim", "onnxruntime"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
    versions["tensorrt"] = tensorrt_version() or "absent"  # its wheel goes by several names (tensorrt-cu12, ...)
    return versions


def export_onnx(model: torch.nn.Module, path: Path, sample: torch.Tensor) -> None:
    """Trace `model` to ONNX with dynamic batch, height and width (uint8 NHWC in and out)."""
    dynamic = {0: "batch", 1: "height", 2: "width"}
    with torch.no_grad():
        # The TorchScript exporter handles the data-dependent padding in DeployModel with dynamic shapes.
        torch.onnx.export(
            model, (sample,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: dynamic, OUTPUT: dynamic},
        )


def check_and_simplify(path: Path) -> bool:
    """onnx.checker, then onnxsim in place; keep the unsimplified graph (and say so) when simplifying fails."""
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    try:
        import onnxsim

        simplified, ok = onnxsim.simplify(model)
        if not ok:
            raise RuntimeError("onnxsim's own check failed")
        onnx.checker.check_model(simplified, full_check=True)
    except Exception as err:  # noqa: BLE001 -- onnxsim fails on some graphs; the unsimplified one is still correct
        log.warning("onnxsim could not simplify %s (%s); keeping the unsimplified graph", path.name, err)
        return False
    onnx.save(simplified, str(path))
    return True


def training_crop(checkpoint: dict) -> int:
    """The crop side the deblurrer in `checkpoint` was trained at: its run's --crop, 256 for official NAFNet files."""
    if checkpoint["meta"].get("source") == "official NAFNet checkpoint":
        return OFFICIAL_TRAINING_CROP
    crop = checkpoint["meta"].get("config", {}).get("crop")
    if not isinstance(crop, int):
        raise UserError("--tlc: the deblurrer checkpoint does not record its training crop; export it without --tlc")
    return crop


def load_models(deblurrer: str, converter: str | None, tlc: bool = False) -> tuple[DeployModel, dict]:
    net, deblurrer_ckpt = load_checkpoint(deblurrer, kind="deblurrer", option="--deblurrer")
    sources = {"deblurrer": {"path": str(deblurrer), "sha256": sha256(Path(deblurrer)), "arch": deblurrer_ckpt["arch"]}}
    if tlc:
        if not isinstance(net, NAFNet):
            raise UserError(f"--tlc: the deblurrer is a {deblurrer_ckpt['arch']}; TLC applies to NAFNet only")
        crop = training_crop(deblurrer_ckpt)
        use_local_statistics(net, crop)
        sources["deblurrer"]["tlc_training_crop"] = crop
    conv = None
    if converter:
        conv, converter_ckpt = load_checkpoint(converter, kind="converter", option="--converter")
        check_compatible(net, conv)
        if is_identity(conv):
            log.warning("--converter %s: is the identity (its run kept no G: none it tried beat the deblurrer alone); "
                        "the bundle holds the deblurrer alone", converter)
            conv = None
        else:
            sources["converter"] = {"path": str(converter), "sha256": sha256(Path(converter)),
                                    "arch": converter_ckpt["arch"]}
    return DeployModel(net, conv).eval(), sources


@torch.no_grad()
def is_identity(converter: torch.nn.Module) -> bool:
    """Whether G returns its input exactly (as it starts: a converter run that kept its start keeps no G)."""
    m = converter.size_multiple
    image = torch.rand(1, 3, 4 * m, 6 * m, generator=torch.Generator().manual_seed(0))
    return bool(torch.equal(converter(image)[-1], image))


def is_bundle(path: Path) -> bool:
    """An existing folder written by b2b-export (its meta.json says so)."""
    try:
        return json.loads((path / "meta.json").read_text()).get("format") == BUNDLE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def prepare_out(out: Path, force: bool) -> Path:
    """Refuse an existing `out` unless it is a bundle and --force is given; return an empty staging folder."""
    if out.exists() and not is_bundle(out):
        raise UserError(f"--out {out} exists and is not a b2b-export bundle (--force replaces only bundles): "
                        "choose another folder")
    if out.exists() and not force:
        raise UserError(f"--out {out} is a bundle already; pass --force to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for stale in [*out.parent.glob(f".{glob.escape(out.name)}.partial-*"),
                      *out.parent.glob(f".{glob.escape(out.name)}.old-*")]:
            # left by a killed export (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        staging = out.parent / f".{out.name}.partial-{os.getpid()}"
        staging.mkdir()
    except OSError as err:
        raise UserError(f"--out {out}: cannot write there ({err.strerror})") from None
    return staging


def publish(staging: Path, out: Path) -> None:
    """Move the finished staging folder into place, replacing an old bundle only once the new one is complete."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def export_bundle(deblurrer: str, out: str | Path, converter: str | None = None, fp16: bool = False,
                  force: bool = False, bounds: ShapeBounds | None = None, engine: bool = False,
                  workspace_bytes: int = DEFAULT_WORKSPACE_BYTES, engine_cache: str | Path | None = None,
                  tlc: bool = False) -> dict:
    """Write a verified bundle to `out` and return its meta; nothing is left behind on failure.

    `bounds`: the frame shapes the bundle promises (default `ShapeBounds()`); `engine`: also build and verify
    a TensorRT engine where TensorRT and a GPU are present (cached in `engine_cache`; b2b-export asks for it);
    `tlc`: the deblurrer with test-time local statistics (`use_local_statistics`) sized from its training crop.
    """
    out = Path(out)
    bounds = bounds or ShapeBounds()
    start = time.perf_counter()
    lock = Lock(beside(out), f"--out {out}").acquire()  # another export to the same --out is refused
    try:
        staging = prepare_out(out, force)
    except BaseException:
        lock.release()
        raise
    try:
        model, sources = load_models(deblurrer, converter, tlc)
        meta = build_bundle(model, staging, fp16, bounds)
        if engine:
            add_engine(meta, staging, bounds, workspace_bytes, engine_cache)
        else:
            meta["tensorrt"] = {"built": False, "reason": "not asked for: --no-engine"}
        meta["sources"] = sources
        meta["export_seconds"] = round(time.perf_counter() - start, 2)
        (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        publish(staging, out)
    except OSError as err:
        raise UserError(f"--out {out}: cannot write the bundle ({err.strerror or err})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        lock.release()
    return meta


def build_bundle(model: DeployModel, folder: Path, fp16: bool, bounds: ShapeBounds) -> dict:
    """Export, check, simplify and verify the graphs into `folder`; return the meta (without sources)."""
    sample = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    fp32_path = folder / ONNX_NAMES["fp32"]
    log.info("exporting the fused graph (opset %d)", OPSET)
    export_onnx(model, fp32_path, sample)
    simplified = {fp32_path.name: check_and_simplify(fp32_path)}
    log.info("verifying %s in ONNX Runtime against PyTorch", fp32_path.name)
    verification = {"fp32": verify_fp32(model, fp32_path, bounds)}
    artefacts = {fp32_path: "fp32"}
    if fp16:
        fp16_path = folder / ONNX_NAMES["fp16"]
        log.info("exporting the FP16 graph")
        export_onnx(model.to_fp16(), fp16_path, sample)
        simplified[fp16_path.name] = check_and_simplify(fp16_path)
        log.info("verifying %s against %s (photos, extreme frames)", fp16_path.name, fp32_path.name)
        verification["fp16"] = verify_fp16(fp32_path, fp16_path, bounds)
        artefacts[fp16_path] = "fp16"
    io = {"layout": "NHWC", "dtype": "uint8", "color": "BGR", "shape": ["batch", "height", "width", 3]}
    return {
        "format": BUNDLE_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "exporter": {"name": "b2b-export", "version": library_versions()["blur2blur"]},
        "input": {"name": INPUT, **io},
        "output": {"name": OUTPUT, **io},
        "shapes": bounds.nhwc(),
        "size_multiple": model.size_multiple,
        "precision": "fp16" if fp16 else "fp32",
        "precisions": list(artefacts.values()),
        "opset": OPSET,
        "simplified": simplified,
        "artefacts": {path.name: artefact(path, precision) for path, precision in artefacts.items()},
        "versions": library_versions(),
        "verification": verification,
    }


def artefact(path: Path, precision: str) -> dict:
    return {"sha256": sha256(path), "bytes": path.stat().st_size, "precision": precision}


def engine_unavailable() -> str | None:
    """Why no TensorRT engine can be built here, or None when one can."""
    installed = tensorrt_version()
    if installed is None:
        return "tensorrt is not installed here"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible here"
    return tensorrt_too_old(installed)


def add_engine(meta: dict, folder: Path, bounds: ShapeBounds, workspace_bytes: int,
               cache_dir: str | Path | None) -> None:
    """Build (or reuse) the TensorRT engine of the bundle's precision, verify it against ONNX Runtime and add
    it to `folder` and `meta`; where TensorRT or a GPU is missing, say so in one line and record why."""
    reason = engine_unavailable()
    if reason:
        log.info("no TensorRT engine: %s; it is built where it will run, from this bundle", reason)
        meta["tensorrt"] = {"built": False, "reason": reason}
        return
    precision = meta["precision"]
    onnx_path = folder / ONNX_NAMES[precision]
    gpu = torch.cuda.get_device_name()
    build = build_engine(onnx_path, INPUT, bounds.nhwc(), precision, gpu, cache_dir, workspace_bytes)
    engine_path = folder / f"model.{precision}.engine"
    shutil.copyfile(build.path, engine_path)
    log.info("verifying the TensorRT engine against ONNX Runtime")
    meta["verification"]["tensorrt"] = verify_engine(engine_path, onnx_path, bounds, INPUT, OUTPUT)
    meta["artefacts"][engine_path.name] = artefact(engine_path, precision)
    meta["tensorrt"] = {"built": True, "engine": engine_path.name, "version": build.version, "gpu": gpu,
                        "precision": precision, "cache_key": build.key, "from_cache": build.cached,
                        "workspace_bytes": workspace_bytes}
