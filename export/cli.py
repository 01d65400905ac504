"""b2b-export: fuse the converter and the deblurrer into one verified ONNX bundle; `b2b-export inspect BUNDLE`."""

from __future__ import annotations

import click

from blur2blur.commands import CHECKPOINT, CONTEXT, run_cli
from blur2blur.errors import UserError


@click.command(name="b2b-export", context_settings=CONTEXT)
@click.option("--deblurrer", required=True, type=CHECKPOINT,
              help="Deblurrer checkpoint (b2b-train, an official NAFNet .pth), `starter` (shipped) or "
              "`nafnet-gopro-w32` (also -w64, nafnet-reds-w64: b2b-train fetch-weights NAME).")
@click.option("--converter", type=click.Path(), help="Converter G checkpoint for the target camera (optional).")
@click.option("--out", required=True, type=click.Path(), help="Bundle folder to write.")
@click.option("--fp16", is_flag=True, help="Also write model.fp16.onnx (FP16 weights and compute, FP32 normalisation); "
              "the bundle's precision (and its TensorRT engine's) becomes fp16.")
@click.option("--tlc", is_flag=True, help="NAFNet with test-time local statistics (NAFNetLocal): the attention's "
              "global mean becomes a local one sized from the training crop. Official GoPro figures use it; it can "
              "leave artefacts on real, out-of-distribution blur, so compare with and without (b2b-eval deblur).")
@click.option("--height", type=int, help="Fixed frame height (with --width: min = opt = max).")
@click.option("--width", type=int, help="Fixed frame width (with --height).")
@click.option("--min-shape", metavar="HxW", help="Smallest frame, HEIGHTxWIDTH.  [default: 32x32]")
@click.option("--opt-shape", metavar="HxW", help="Frame size TensorRT tunes for.  [default: 720x1280]")
@click.option("--max-shape", metavar="HxW", help="Largest frame.  [default: 1080x1920]")
@click.option("--batch", default=1, show_default=True, type=int,
              help="Largest batch of frames, also the batch TensorRT tunes for (batches run from 1 to it).")
@click.option("--no-engine", is_flag=True,
              help="Do not build a TensorRT engine even where TensorRT and a GPU are present.")
@click.option("--workspace", default=2.0, show_default=True, type=click.FloatRange(min=0.0625),
              help="TensorRT builder workspace limit, GiB.")
@click.option("--force", is_flag=True, help="Replace an existing bundle.")
def export_command(deblurrer, converter, out, fp16, tlc, height, width, min_shape, opt_shape, max_shape, batch,
                   no_engine, workspace, force):
    """Export the fused graph (uint8 N x H x W x 3 BGR in and out) and verify it in ONNX Runtime.

    \b
    Examples:
      b2b-export --deblurrer runs/deblur/last.pt --converter runs/conv/best.pt --fp16 --out bundle
      b2b-export --deblurrer NAFNet-GoPro-width32.pth --fp16 --height 720 --width 1280 --out bundle720
      b2b-export --deblurrer NAFNet-GoPro-width32.pth --tlc --fp16 --out bundle-tlc
      b2b-export --deblurrer best.pt --min-shape 240x320 --opt-shape 480x640 --max-shape 720x1280 --batch 2 --out b
      b2b-export inspect bundle        (what a bundle holds, and whether its files still match)
    The graph pads frames inside, so any height and width in the range works. The bundle is only written
    when verification passes; where TensorRT and a GPU are present it also holds a verified engine.
    Add --debug for a traceback on errors.
    """
    from blur2blur.export.shapes import shape_bounds
    from blur2blur.files.outputs import check_outputs

    check_outputs({"--deblurrer": deblurrer, "--converter": converter}, folders={"--out": out})
    bounds = shape_bounds(height, width, min_shape, opt_shape, max_shape, batch)  # before the slow torch import
    from blur2blur.export.onnx_export import export_bundle

    meta = export_bundle(deblurrer, out, converter=converter, fp16=fp16, force=force, bounds=bounds,
                         engine=not no_engine, workspace_bytes=int(workspace * (1 << 30)), tlc=tlc)
    verification = meta["verification"]
    fp32 = verification["fp32"]
    click.echo(f"model.onnx vs PyTorch: max error {fp32['max_abs_error']} grey levels, PSNR {fp32['psnr_db']:.1f} dB "
               f"at {len(fp32['sizes'])} sizes")
    if "fp16" in verification:
        half = verification["fp16"]
        extremes = half["extreme_frames"]
        click.echo(f"model.fp16.onnx vs FP32: {half['psnr_vs_fp32_db']:.1f} dB on photos, "
                   f"{min(e['psnr_vs_fp32_db'] for e in extremes.values()):.1f} dB on extreme "
                   f"{'x'.join(map(str, half['extreme_shape'][1:3]))} frames, largest FP16 value "
                   f"{max(e['max_abs_activation'] for e in extremes.values()):.0f} (limit 65504)")
    if meta["tensorrt"]["built"]:
        engine = verification["tensorrt"]
        click.echo(f"{meta['tensorrt']['engine']} vs ONNX Runtime: {engine['psnr_db']:.1f} dB on photos, "
                   f"{engine['extreme_psnr_db']:.1f} dB on extreme frames")
    click.echo(f"wrote {out} in {meta['export_seconds']:.1f} s")


@click.command(name="b2b-export inspect", context_settings=CONTEXT)
@click.argument("bundle", type=click.Path())
def inspect_command(bundle):
    """Print what an export bundle holds: shapes, precision, verification figures, file sizes, and whether
    each file still matches its sha256 (non-zero exit when one does not)."""
    from blur2blur.export.bundle_info import describe

    report, problems = describe(bundle)
    click.echo(report)
    if problems:
        raise UserError(f"bundle {bundle}: {', '.join(problems)}: the bundle was changed after export; export it again")


def main(argv: list[str] | None = None) -> None:
    run_cli(export_command, argv, {"inspect": inspect_command})
