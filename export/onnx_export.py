"""Export the fused deploy module to a verified bundle: model.onnx (+ model.fp16.onnx) and meta.json."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from blur2blur.errors import UserError
from blur2blur.export.verify import verify_fp16, verify_fp32
from blur2blur.models.checkpoint import load_checkpoint
from blur2blur.models.deploy import DeployModel, check_compatible

log = logging.getLogger(__name__)
BUNDLE_FORMAT = "blur2blur-bundle/1"
OPSET = 17
INPUT, OUTPUT = "frames", "restored"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {}
    for name in ("blur2blur", "torch", "onnx", "onnxsim", "onnxruntime"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
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
    except Exception as err:  # onnxsim fails on some graphs; the unsimplified one is still correct
        log.warning("onnxsim could not simplify %s (%s); keeping the unsimplified graph", path.name, err)
        return False
    onnx.save(simplified, str(path))
    return True


def load_models(deblurrer: str, converter: str | None) -> tuple[DeployModel, dict]:
    net, deblurrer_ckpt = load_checkpoint(deblurrer, kind="deblurrer", option="--deblurrer")
    sources = {"deblurrer": {"path": str(deblurrer), "sha256": sha256(Path(deblurrer)), "arch": deblurrer_ckpt["arch"]}}
    conv = None
    if converter:
        conv, converter_ckpt = load_checkpoint(converter, kind="converter", option="--converter")
        check_compatible(net, conv)
        sources["converter"] = {"path": str(converter), "sha256": sha256(Path(converter)), "arch": converter_ckpt["arch"]}
    return DeployModel(net, conv).eval(), sources


def is_bundle(path: Path) -> bool:
    """An existing folder written by b2b-export (its meta.json says so)."""
    try:
        return json.loads((path / "meta.json").read_text()).get("format") == BUNDLE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def prepare_out(out: Path, force: bool) -> Path:
    """Refuse an existing `out` unless it is a bundle and --force is given; return an empty staging folder."""
    if out.exists() and not force:
        raise UserError(f"--out {out} exists; pass --force to replace it")
    if out.exists() and not is_bundle(out):
        raise UserError(f"--out {out} exists and is not a b2b-export bundle; --force only replaces bundles: "
                        "choose another folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.parent / f".{out.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
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
                  force: bool = False) -> dict:
    """Write a verified bundle to `out` and return its meta; nothing is left behind on failure."""
    out = Path(out)
    start = time.perf_counter()
    staging = prepare_out(out, force)
    try:
        model, sources = load_models(deblurrer, converter)
        meta = build_bundle(model, staging, fp16)
        meta["sources"] = sources
        meta["export_seconds"] = round(time.perf_counter() - start, 2)
        (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return meta


def build_bundle(model: DeployModel, folder: Path, fp16: bool) -> dict:
    sample = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    fp32_path = folder / "model.onnx"
    log.info("exporting the fused graph (opset %d)", OPSET)
    export_onnx(model, fp32_path, sample)
    simplified = {"model.onnx": check_and_simplify(fp32_path)}
    log.info("verifying model.onnx in ONNX Runtime against PyTorch")
    verification = {"fp32": verify_fp32(model, fp32_path)}
    artefacts = [fp32_path]
    if fp16:
        fp16_path = folder / "model.fp16.onnx"
        log.info("exporting the FP16 graph")
        export_onnx(model.to_fp16(), fp16_path, sample)
        simplified["model.fp16.onnx"] = check_and_simplify(fp16_path)
        verification["fp16"] = verify_fp16(fp32_path, fp16_path)
        artefacts.append(fp16_path)
    return {
        "format": BUNDLE_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "input": {"name": INPUT, "layout": "NHWC", "dtype": "uint8", "color": "BGR", "shape": ["batch", "height", "width", 3]},
        "output": {"name": OUTPUT, "layout": "NHWC", "dtype": "uint8", "color": "BGR", "shape": ["batch", "height", "width", 3]},
        "size_multiple": model.size_multiple,
        "precisions": ["fp32", "fp16"] if fp16 else ["fp32"],
        "opset": OPSET,
        "simplified": simplified,
        "artefacts": {path.name: {"sha256": sha256(path), "bytes": path.stat().st_size} for path in artefacts},
        "versions": library_versions(),
        "verification": verification,
    }
