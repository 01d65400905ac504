"""b2b-train: synthesize blur, train the deblurrer (and, in later versions, the kernel extractor and converter)."""

from __future__ import annotations

from pathlib import Path

import click

from blur2blur.errors import run_cli

SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(name="b2b-train", context_settings=SETTINGS)
def main_group():
    """Train blur2blur's networks. Add --debug to any command for a traceback on errors."""


class DomainListCommand(click.Command):
    """Lists the blur domains at the end of --help (computed only when help is shown)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from blur2blur.train.domains import domain_summary

        with formatter.section("Domains"):
            formatter.write_dl(domain_summary())


@main_group.command(cls=DomainListCommand, context_settings=SETTINGS)
@click.option("--domain", required=True, help="Blur domain: `known` or an unknown camera preset (listed below).")
@click.option("--sharp", default="skimage+deadleaves", show_default=True,
              help="Sharp content: a folder, a video, `skimage` (bundled photos), `deadleaves[:N]`, or a comma list.")
@click.option("--out", required=True, type=click.Path(), help="Folder to write blur/ and sharp/ into.")
@click.option("--count", default=200, show_default=True, help="Number of pairs.")
@click.option("--size", default=256, show_default=True, help="Side of each square pair in pixels.")
@click.option("--seed", default=0, show_default=True, help="Seed: the same seed gives the same pairs.")
@click.option("--max-images", default=500, show_default=True, type=click.IntRange(min=1),
              help="Use at most this many sharp images (videos give about two frames a second).")
@click.option("--overwrite", is_flag=True, help="Replace pairs of another synthesis in OUT.")
@click.option("--video", "video_frames", type=click.IntRange(min=1),
              help="Instead of pairs, write OUT as a blurry video of this many frames (--frame-size, not --size/--count).")
@click.option("--frame-size", default="320x240", show_default=True, help="Video frame size WIDTHxHEIGHT, with --video.")
def synth(domain, sharp, out, count, size, seed, max_images, overwrite, video_frames, frame_size):
    """Synthesize blurry/sharp pairs (or a blurry video) of a blur domain from sharp content.

    Pairs go to OUT/blur/NNNNN.png and OUT/sharp/NNNNN.png with matching names; running again with the
    same settings resumes. With --video N, OUT is a video file (.mp4) and `<name>.sharp<suffix>` beside it
    holds the sharp frames.
    """
    from blur2blur.images import parse_frame_size
    from blur2blur.train.content import load_sharp_images
    from blur2blur.train.domains import get_domain
    from blur2blur.train.synth import synthesize, synthesize_video

    get_domain(domain)  # a bad name fails before any image is read
    images = load_sharp_images(sharp, max_images=max_images)
    if video_frames:
        width, height = parse_frame_size(frame_size, "--frame-size")
        out_path = Path(out)
        sharp_out = out_path.with_name(f"{out_path.stem}.sharp{out_path.suffix}")
        synthesize_video(domain, images, out, frames=video_frames, width=width, height=height, seed=seed,
                         sharp_out=sharp_out)
        click.echo(f"wrote {out} and {sharp_out}")
    else:
        summary = synthesize(domain, images, out, count=count, size=size, seed=seed, overwrite=overwrite)
        click.echo(f"wrote {summary['count']} {domain} pairs to {out}")


@main_group.command(context_settings=SETTINGS)
@click.option("--pairs", required=True, help="Paired data: a folder with blur/ and sharp/, or gopro:, reds:, rsblur:, b2b: PATH.")
@click.option("--out", required=True, type=click.Path(), help="Run folder for checkpoints.")
@click.option("--arch", default="nafnet-tiny", show_default=True, help="nafnet-tiny, nafnet-small, nafnet-w32, nafnet-w64.")
@click.option("--steps", default=2000, show_default=True, help="Total training steps.")
@click.option("--batch", default=8, show_default=True)
@click.option("--crop", default=64, show_default=True, help="Training crop side in pixels.")
@click.option("--lr", default=2e-3, show_default=True, help="AdamW learning rate (cosine decay).")
@click.option("--seed", default=0, show_default=True)
@click.option("--workers", default=0, show_default=True, help="Data-loading worker processes.")
@click.option("--rotate", is_flag=True,
              help="Also turn crops by 90 degrees: for blur in every direction (GoPro), not for a directional known blur.")
def deblurrer(**options):
    """Train NAFNet on known-blur pairs with the PSNR loss; writes OUT/last.pt."""
    from blur2blur.train.deblurrer import DeblurrerConfig, train_deblurrer

    path = train_deblurrer(DeblurrerConfig(**options))
    click.echo(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    run_cli(main_group, argv)
