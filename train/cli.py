"""b2b-train: synthesize blur; train the deblurrer, the blur kernel extractor and a camera's converter G."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from blur2blur.commands import CHECKPOINT, CONTEXT, run_cli
from blur2blur.files.outputs import check_outputs
from blur2blur.train.config import (
    CRITIC_INPUTS,
    DEVICES,
    OPTIMIZERS,
    PERCEPTUAL,
    PRECISIONS,
    RECIPES,
    SCHEDULES,
    ConverterConfig,
    DeblurrerConfig,
    KernelConfig,
)
from blur2blur.weights import OFFICIAL, official_path
from blur2blur.weights.fetch import fetch_weights


@click.group(name="b2b-train", context_settings=CONTEXT)
def main_group():
    """Train blur2blur's networks. Add --debug to any command for a traceback on errors."""


class DomainListCommand(click.Command):
    """Lists the blur domains at the end of --help (computed only when help is shown)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from blur2blur.data.blur.domains import domain_summary

        with formatter.section("Domains"):
            formatter.write_dl(domain_summary())


@main_group.command(cls=DomainListCommand, context_settings=CONTEXT)
@click.option("--domain", required=True, help="Blur domain: `known` or an unknown camera preset (listed below).")
@click.option("--sharp", default="skimage+deadleaves", show_default=True,
              help="Sharp content: a folder, a video, `photos` (Debian's wallpaper photographs), `skimage` "
                   "(bundled photos), `deadleaves[:N]`, `texleaves[:N]`, or a comma list.")
@click.option("--out", required=True, type=click.Path(), help="Folder to write blur/ and sharp/ into.")
@click.option("--count", default=200, show_default=True, help="Number of pairs.")
@click.option("--size", default=256, show_default=True, help="Side of each square pair in pixels.")
@click.option("--seed", default=0, show_default=True, help="Seed: the same seed gives the same pairs.")
@click.option("--max-images", default=500, show_default=True, type=click.IntRange(min=1),
              help="Use at most this many sharp images (videos give about two frames a second).")
@click.option("--overwrite", is_flag=True, help="Replace pairs of another synthesis in OUT (with --video: a video "
              "that exists).")
@click.option("--video", "video_frames", type=click.IntRange(min=1),
              help="Instead of pairs, write OUT as a blurry video of this many frames "
                   "(--frame-size, not --size/--count).")
@click.option("--frame-size", default="320x240", show_default=True, help="Video frame size WIDTHxHEIGHT, with --video.")
def synth(domain, sharp, out, count, size, seed, max_images, overwrite, video_frames, frame_size):
    """Synthesize blurry/sharp pairs (or a blurry video) of a blur domain from sharp content.

    Pairs go to OUT/blur/NNNNN.png and OUT/sharp/NNNNN.png with matching names; running again with the
    same settings resumes. With --video N, OUT is a video file (.mp4) and `<name>.sharp<suffix>` beside it
    holds the sharp frames.
    """
    from blur2blur.commands import parse_frame_size
    from blur2blur.data.blur.content import load_sharp_images
    from blur2blur.data.blur.domains import get_domain
    from blur2blur.data.blur.write import synthesize, synthesize_video

    get_domain(domain)  # a bad name fails before any image is read
    out = os.path.abspath(out)  # `.` and `..` have no name to write beside
    out_path = Path(out)
    sharp_out = out_path.with_name(f"{out_path.stem}.sharp{out_path.suffix}")
    if video_frames:
        check_outputs({"--sharp": sharp.split(",")}, files={"--out": out, "--out's sharp video": sharp_out},
                      force=overwrite, force_option="--overwrite")
    else:
        check_outputs({"--sharp": sharp.split(",")}, folders={"--out": out})
    images = load_sharp_images(sharp, max_images=max_images)
    if video_frames:
        width, height = parse_frame_size(frame_size, "--frame-size")
        synthesize_video(domain, images, out, frames=video_frames, width=width, height=height, seed=seed,
                         sharp_out=sharp_out)
        click.echo(f"wrote {out} and {sharp_out}")
    else:
        summary = synthesize(domain, images, out, count=count, size=size, seed=seed, overwrite=overwrite)
        click.echo(f"wrote {summary['count']} {domain} pairs to {out}")


def _stack(options: list):
    """One decorator applying `options` in order (the first is listed first in --help)."""
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


def held_out_options(config_class):
    """--val-count and --val-size, defaults from `config_class`."""
    d = config_class()
    return _stack([
        click.option("--val-count", default=d.val_count, show_default=True, help="Held-out pairs evaluated."),
        click.option("--val-size", default=d.val_size, show_default=True,
                     help="Centre crop of each held-out pair (0: the whole image)."),
    ])


def pair_options(config_class):
    """The data options of trainers that learn from known (blurry, sharp) pairs, defaults from `config_class`."""
    return _stack([
        click.option("--pairs", default="",
                     help="Known-blur pairs (required unless --resume): a folder with blur/ + sharp/, gopro:, "
                          "reds:, rsblur:, b2b: PATH, or synthetic:DOMAIN[?sharp=SRC&size=N] made on the fly."),
        click.option("--val-pairs", help="Held-out pairs to validate on (default: a seeded share of --pairs)."),
        held_out_options(config_class),
        click.option("--rotate", is_flag=True,
                     help="Also turn crops by 90 degrees: for blur in every direction (GoPro), "
                          "not for a directional known blur."),
    ])


def run_options(config_class):
    """The options every trainer shares (the training core's RunConfig), defaults from `config_class`."""
    d = config_class()
    return _stack([
        click.option("--out", required=True, type=click.Path(),
                     help="Run folder: config.json, last.pt, best.pt, metrics.jsonl, curves.png, samples/."),
        click.option("--resume", is_flag=True,
                     help="Continue the run in --out up to its --steps, with its own settings and state."),
        click.option("--steps", default=d.steps, show_default=True, help="Total training steps of the run."),
        click.option("--batch", default=d.batch, show_default=True,
                     help="Images per step (per process under torchrun)."),
        click.option("--crop", default=d.crop, show_default=True, help="Training crop side in pixels."),
        click.option("--lr", default=d.lr, show_default=True, help="Peak learning rate."),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=d.optimizer, show_default=True),
        click.option("--beta1", default=d.beta1, show_default=True, help="Adam beta1."),
        click.option("--beta2", default=d.beta2, show_default=True, help="Adam beta2."),
        click.option("--weight-decay", default=d.weight_decay, show_default=True),
        click.option("--schedule", type=click.Choice(SCHEDULES), default=d.schedule, show_default=True,
                     help="cosine: decay to --min-lr; linear: hold for a third of the run, then decay linearly; "
                          "constant: hold."),
        click.option("--min-lr", default=d.min_lr, show_default=True, help="Where the schedule ends."),
        click.option("--warmup", default=d.warmup, show_default=True,
                     help="Steps over which the rate first ramps up linearly from zero."),
        click.option("--seed", default=d.seed, show_default=True, help="Seed of the weights, crops and split."),
        click.option("--workers", default=d.workers, show_default=True, help="Data-loading worker processes."),
        click.option("--eval-every", default=d.eval_every, show_default=True,
                     help="Steps between evaluations (held-out figures, sample grid, last.pt and best.pt)."),
        click.option("--log-every", default=d.log_every, show_default=True, help="Steps between metrics.jsonl lines."),
        click.option("--device", type=click.Choice(DEVICES), default=d.device, show_default=True,
                     help="auto: a CUDA GPU when PyTorch sees one (under torchrun, one per process)."),
        click.option("--precision", type=click.Choice(PRECISIONS), default=d.precision, show_default=True,
                     help="Forward passes in bf16 or fp16 (autocast; fp16 with loss scaling, CUDA only); "
                          "weights stay fp32."),
    ])


def explicit(ctx: click.Context) -> list[str]:
    """The options the user typed (not defaults): a resumed run refuses ones that differ from its own."""
    return [name for name in ctx.params if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]


def report(result) -> None:
    """The run's last lines: where its files are, or how to continue it."""
    if result.stopped_by:
        if result.main:
            click.echo(f"stopped at step {result.step} of {result.steps} ({result.stopped_by}); saved {result.last}; "
                       f"continue with --out {result.last.parent} --resume", err=True)
        sys.exit(130 if result.stopped_by == "SIGINT" else 143)
    if result.main:
        click.echo(f"wrote {result.last}" + (f", best {result.best}" if result.best else ""))


@main_group.command(context_settings=CONTEXT)
@pair_options(DeblurrerConfig)
@click.option("--arch", default=DeblurrerConfig.arch, show_default=True,
              help="nafnet-tiny, nafnet-w16, nafnet-small (CPU); nafnet-w32, nafnet-w64 (the paper's GoPro models).")
@click.option("--init", type=CHECKPOINT,
              help="Fine-tune from this checkpoint, architecture and all (an official NAFNet file, or `starter`).")
@run_options(DeblurrerConfig)
@click.pass_context
def deblurrer(ctx, **options):
    """Train the deblurrer, NAFNet, on known-blur pairs with the PSNR loss.

    Every evaluation reports PSNR and SSIM of the blurry input and of the output on held-out pairs;
    best.pt keeps the best PSNR. Ctrl-C saves; --resume continues exactly. Under `torchrun
    --nproc_per_node N` each process trains on its share of every batch (gradients averaged).
    """
    from blur2blur.train.deblurrer import train_deblurrer

    report(train_deblurrer(DeblurrerConfig(**options), given=explicit(ctx)))


@main_group.command(context_settings=CONTEXT)
@pair_options(KernelConfig)
@click.option("--arch", default=KernelConfig.arch, show_default=True,
              help="kernel-extractor-tiny (CPU), kernel-extractor (the reference: 64 features, 10/20 blocks, 512-d).")
@click.option("--init", type=click.Path(), help="Continue training from this kernel checkpoint.")
@run_options(KernelConfig)
@click.pass_context
def kernel(ctx, **options):
    """Train the blur kernel extractor on known-blur pairs with the Charbonnier loss.

    It encodes the blur of a (sharp, blurry) pair as a code and re-applies a code to any sharp image: the
    converter uses it to put the known blur on your camera's sharp images. Every evaluation reports, on
    held-out pairs, the PSNR against the real blurry image of the sharp image re-blurred with its own
    pair's code (`own_code`, kept as best.pt), with another pair's code (`other_code`) and unblurred
    (`no_blur`): own_code should beat both.
    """
    from blur2blur.train.kernel import train_kernel

    report(train_kernel(KernelConfig(**options), given=explicit(ctx)))


@main_group.command(context_settings=CONTEXT)
@click.option("--recipe", type=click.Choice(list(RECIPES)), default="cpu", show_default=True,
              help="Defaults for the options below (those you give still win): cpu (small networks, high rates, "
                   "for this CPU) or paper (the reference's: mimo-unet and the patchgan judging the images, Adam "
                   "2e-4 both, batch 1, crop 256, 60000 steps held for a third then decayed linearly, no --ema or "
                   "--warmup; VGG16 reconstruction with --vgg-weights, else lowpass).")
@click.option("--blurry", default="",
              help="The camera's blurry images: a folder, a video, a Blur2Blur folder (trainA/), a pair source "
                   "(its blurry side) or synthetic:DOMAIN[?sharp=SRC].")
@click.option("--sharp", default="",
              help="The camera's sharp images (other content is fine: they need not match --blurry): the same "
                   "kinds of source (a Blur2Blur folder gives trainB/, a pair source its sharp side).")
@click.option("--known", default="",
              help="The known blur: synthetic:DOMAIN (drawn exactly), or the known pairs the deblurrer learned from "
                   "(with --kernel: their blur is put on --sharp; without: their blurry images serve as they are).")
@click.option("--deblurrer", default="", type=CHECKPOINT,
              help="The known-blur deblurrer checkpoint, or `starter` (the shipped one); "
                   "frozen, validation runs it after G.")
@click.option("--kernel", help="Kernel extractor checkpoint (b2b-train kernel) trained on the --known pairs.")
@click.option("--val-pairs",
              help="Paired images of the camera to validate on: PSNR/SSIM of the deblurrer alone and after G, and "
                   "best.pt by it. Without: best.pt by the no-reference score (see README).")
@held_out_options(ConverterConfig)
@click.option("--arch", default=ConverterConfig.arch, show_default=True,
              help="G: mimo-unet-nano, mimo-unet-tiny, mimo-unet-small (CPU); mimo-unet (the paper's, 6.8 M).")
@click.option("--critic", default=ConverterConfig.critic, show_default=True,
              help="D: patchgan-tiny-nonorm (CPU; without InstanceNorm, which hides how much noise and blur an "
                   "image holds), patchgan-tiny, patchgan (the paper's 70 x 70 PatchGAN).")
@click.option("--critic-input", type=click.Choice(CRITIC_INPUTS), default=ConverterConfig.critic_input,
              show_default=True,
              help="What D sees: detail (each output minus its blur: the band of blur and noise, not colour or "
                   "layout) or image (the outputs themselves, as the reference).")
@click.option("--perceptual", type=click.Choice(PERCEPTUAL), default=ConverterConfig.perceptual, show_default=True,
              help="Features of the reconstruction loss: filters (a fixed Gaussian pyramid, no download), "
                   "deblurrer (its encoder), kernel (the kernel extractor's), vgg16 (the paper's; --vgg-weights).")
@click.option("--vgg-weights", type=click.Path(),
              help="torchvision's ImageNet VGG16 file (vgg16-397923af.pth); implies --perceptual vgg16.")
@click.option("--lambda-rec", type=float, help="Weight of the reconstruction loss (default: per --perceptual; "
                                                "vgg16 0.8 as in the paper).")
@click.option("--lambda-gp", default=ConverterConfig.lambda_gp, show_default=True,
              help="Weight of D's gradient penalty.")
@click.option("--critic-lr", default=ConverterConfig.critic_lr, show_default=True,
              help="D's peak learning rate (--lr is G's; both follow --schedule).")
@click.option("--ema", default=ConverterConfig.ema, show_default=True,
              help="Decay of the moving average of G's weights that is evaluated and saved (0: none).")
@run_options(ConverterConfig)
@click.pass_context
def converter(ctx, **options):
    """Train Blur2Blur's converter G for one camera, from its blurry and sharp images (unpaired).

    G learns to turn the camera's blurry frames into the same frames with the known blur, which the
    --deblurrer restores. A PatchGAN compares the blur and noise of G's outputs (three sizes; their
    detail band) with those of the camera's own sharp images carrying the known blur; a low-passed
    perceptual loss keeps the content. G starts as the identity; an average of its weights is what is
    evaluated and saved. That is the cpu recipe; --recipe paper trains the reference's networks with its
    settings instead (the critic judging the images themselves).

    best.pt is the G to export: with --val-pairs the best PSNR after the deblurrer, without them the best
    no-reference score (the deblurred output holds the detail and noise of deblurred known-blur frames of
    the camera, scale by scale).

    \b
    Example (the shipped starter deblurrer, a camera of your own, no pairs of it):
      b2b-train converter --blurry cam/blurry/ --sharp cam/sharp/ --known synthetic:known \\
          --deblurrer starter --out runs/converter
    Then: b2b-export --deblurrer starter --converter runs/converter/best.pt --out bundle

    Under `torchrun --nproc_per_node N` each process trains G and D on its share of every batch.
    """
    from blur2blur.train.converter import kept_no_converter, train_converter

    given = explicit(ctx)
    config = ConverterConfig.from_recipe(**{name: options[name] for name in given if name != "recipe"},
                                         recipe=options["recipe"])
    result = train_converter(config, given=given)
    report(result)
    if result.main and result.best and kept_no_converter(result.best):
        click.echo(f"kept no G: the identity (step 0) scored best, so no G it tried would help; b2b-export "
                   f"--converter {result.best} makes a bundle of the deblurrer alone")


@main_group.command(context_settings=CONTEXT)
@click.argument("checkpoint", type=CHECKPOINT)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def pack(checkpoint, out, force):
    """Write CHECKPOINT's model as a small file to ship: FP16 weights, its config and figures, no optimizer
    state (loading casts the weights back to FP32). `make starter` packs the shipped starter this way."""
    from blur2blur.models.checkpoint import pack_checkpoint

    check_outputs({"CHECKPOINT": checkpoint}, files={"--out": out}, force=force)
    path = pack_checkpoint(checkpoint, out)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@main_group.command(name="fetch-weights", context_settings=CONTEXT)
@click.argument("names", nargs=-1, metavar="NAMES...", type=click.Choice(list(OFFICIAL)))
@click.option("--list", "show", is_flag=True, help="List the names, their files and whether each is fetched.")
def fetch(names, show):
    """Download NAFNet's official weights NAMES into the cache folder, checked by size and sha256; then
    `--deblurrer NAME` takes them anywhere. An interrupted download resumes."""
    if not names and not show:
        raise click.UsageError("name the weights to fetch (--list shows them)")
    if show:
        for weights in OFFICIAL.values():
            state = "fetched" if official_path(weights).is_file() else "not fetched"
            click.echo(f"{weights.name:18} {weights.file} ({weights.size / 1e6:.0f} MB, {state}): {weights.about}")
        return
    for name in names:
        click.echo(f"{name}: {fetch_weights(OFFICIAL[name])}")


def main(argv: list[str] | None = None) -> None:
    run_cli(main_group, argv)


if __name__ == "__main__":  # `torchrun ... -m blur2blur.train.cli deblurrer ...`
    main()
