"""b2b-export: fuse the converter and the deblurrer into one verified ONNX bundle."""

from __future__ import annotations

import click

from blur2blur.errors import run_cli


@click.command(name="b2b-export", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--deblurrer", required=True, type=click.Path(), help="Deblurrer checkpoint (b2b-train, or an official NAFNet .pth).")
@click.option("--converter", type=click.Path(), help="Converter G checkpoint for the target camera (optional).")
@click.option("--out", required=True, type=click.Path(), help="Bundle folder to write.")
@click.option("--fp16", is_flag=True, help="Also write model.fp16.onnx (FP16 weights and compute, FP32 normalisation).")
@click.option("--force", is_flag=True, help="Replace an existing bundle.")
def main_command(deblurrer, converter, out, fp16, force):
    """Export the fused graph (uint8 N x H x W x 3 BGR in and out) and verify it in ONNX Runtime.

    \b
    Example:
      b2b-export --deblurrer runs/deblur/last.pt --converter runs/conv/best.pt --fp16 --out bundle
    The bundle is only written when verification passes. Add --debug for a traceback on errors.
    """
    from blur2blur.export.onnx_export import export_bundle

    meta = export_bundle(deblurrer, out, converter=converter, fp16=fp16, force=force)
    fp32 = meta["verification"]["fp32"]
    click.echo(f"model.onnx vs PyTorch: max error {fp32['max_abs_error']} grey levels, PSNR {fp32['psnr_db']:.1f} dB")
    if fp16:
        fp16 = meta["verification"]["fp16"]
        click.echo(f"model.fp16.onnx vs FP32: {fp16['psnr_vs_fp32_db']:.1f} dB on photos, "
                   f"{min(fp16['extreme_frames_psnr_db'].values()):.1f} dB on extreme 1920 x 1080 frames")
    click.echo(f"wrote {out} in {meta['export_seconds']:.1f} s")


def main(argv: list[str] | None = None) -> None:
    run_cli(main_command, argv)
