"""What a bundle holds and whether its files are intact: `b2b-export inspect BUNDLE` (torch-free)."""

from __future__ import annotations

from pathlib import Path

from blur2blur.runtime.bundle import check_artefacts, read_meta


def _shape(shape: list) -> str:
    return "x".join(str(v) for v in shape)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def describe(folder: str | Path) -> tuple[str, list[str]]:
    """A readable report of the bundle at `folder`, and the problems found (files that no longer match)."""
    folder = Path(folder)
    meta = read_meta(folder, "bundle")
    exporter = meta.get("exporter", {})
    lines = [f"bundle {folder}: {meta.get('format', '?')}, exported {meta.get('created', '?')} by "
             + f"{exporter.get('name', 'b2b-export')} {exporter.get('version', '?')}"]
    for role in ("input", "output"):
        io = meta.get(role, {})
        lines.append(f"{role:<7}{io.get('name', '?')}: {io.get('dtype', '?')} {io.get('layout', '?')} "
                     f"{io.get('color', '')}")
    shapes = meta.get("shapes")
    if shapes:
        lines.append("shapes  " + ", ".join(f"{k} {_shape(shapes[k])}" for k in ("min", "opt", "max") if k in shapes))
    lines.append(f"precision {meta.get('precision', '?')} (graphs: {', '.join(meta.get('precisions', []))}; "
                 f"opset {meta.get('opset', '?')})")
    for role, source in meta.get("sources", {}).items():
        lines.append(f"source  {role}: {source.get('arch')} from {source.get('path')} "
                     f"(sha256 {source.get('sha256', '')[:16]})")
    lines += _verification_lines(meta.get("verification", {}))
    engine = meta.get("tensorrt", {})
    if engine.get("built"):
        lines.append(f"engine  {engine.get('engine')}: TensorRT {engine.get('version')} on {engine.get('gpu')}, "
                     f"{engine.get('precision')}, cache key {engine.get('cache_key')}")
    elif engine:
        lines.append(f"engine  none ({engine.get('reason')}): TensorRT builds it where it will run")
    states = check_artefacts(folder, meta)
    lines.append("files")
    for name, info in meta["artefacts"].items():
        size = (folder / name).stat().st_size if states[name] != "missing" else info.get("bytes", 0)
        verdict = {"ok": "sha256 ok", "modified": "MODIFIED: sha256 differs", "missing": "MISSING"}[states[name]]
        lines.append(f"  {name:<22}{_megabytes(size):>10}  {verdict}")
    problems = [f"{name} is {state}" for name, state in states.items() if state != "ok"]
    return "\n".join(lines), problems


def _verification_lines(verification: dict) -> list[str]:
    lines = []
    fp32 = verification.get("fp32")
    if fp32:
        sizes = ", ".join(_shape(s["shape"]) for s in fp32.get("sizes", []))
        lines.append(f"verified fp32 graph vs PyTorch: max error {fp32['max_abs_error']} grey levels, "
                     f"PSNR {fp32['psnr_db']:.1f} dB at {sizes}")
    fp16 = verification.get("fp16")
    if fp16:
        extremes = fp16.get("extreme_frames", {})
        worst = min((e["psnr_vs_fp32_db"] for e in extremes.values()), default=float("nan"))
        finite = all(e.get("finite", False) for e in extremes.values())
        lines.append(f"verified fp16 graph vs fp32 graph: PSNR {fp16['psnr_vs_fp32_db']:.1f} dB on photos; extreme "
                     f"{_shape(fp16.get('extreme_shape', []))} frames ({', '.join(extremes)}): {worst:.1f} dB, "
                     f"{'finite' if finite else 'NOT FINITE'}")
    engine = verification.get("tensorrt")
    if engine:
        lines.append(f"verified TensorRT engine vs ONNX Runtime: PSNR {engine['psnr_db']:.1f} dB on photos, "
                     f"{engine['extreme_psnr_db']:.1f} dB on extreme frames")
    return lines
