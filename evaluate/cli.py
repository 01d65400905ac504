"""b2b-eval: how much restoring helps, on pairs (`deblur`) and on hand pose (`handpose`); b2b-bench: what it costs."""

from __future__ import annotations

import functools
import json
from contextlib import ExitStack

import click

from blur2blur.errors import UserError, run_cli
from blur2blur.shipped import CHECKPOINT

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def model_options(command):
    """The restorations to compare: a bundle, or checkpoints."""
    options = [
        click.option("--bundle", type=click.Path(), help="Export bundle (b2b-export), run by the runtime's engine."),
        click.option("--deblurrer", type=CHECKPOINT, help="Deblurrer checkpoint or `starter`, run in PyTorch (instead of "
                     "--bundle)."),
        click.option("--converter", type=click.Path(), help="The camera's converter G checkpoint (with --deblurrer): "
                     "adds the deblurrer after G."),
        click.option("--backend", default="auto", show_default=True,
                     type=click.Choice(["auto", "tensorrt", "onnxruntime"]), help="Engine for --bundle, as b2b-run."),
        click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "fp16"]),
                     help="Graph for --bundle, as b2b-run."),
        click.option("--json", "json_path", type=click.Path(), help="Write every figure to this JSON file."),
        click.option("--grid", type=click.Path(), help="Write a labelled PNG per image into this folder."),
    ]
    return functools.reduce(lambda cmd, option: option(cmd), reversed(options), command)


def _write_json(path, result: dict) -> None:
    from blur2blur.images import write_atomic

    write_atomic(path, (json.dumps(result, indent=2) + "\n").encode())
    click.echo(f"wrote {path}")


def _report(table: str, count: int, grid: str | None, json_file, result: dict) -> None:
    """The table, then what was written."""
    click.echo(table)
    if grid:
        click.echo(f"wrote {count} grids to {grid}")
    if json_file:
        _write_json(json_file, result)


@click.group(name="b2b-eval", context_settings=CONTEXT)
def eval_group():
    """Measure what the deblurrer and the camera's converter bring, on your own data.

    \b
      b2b-eval deblur    PSNR/SSIM on blurry/sharp pairs: blurry input, deblurrer alone, with converter
      b2b-eval handpose  hand landmarks on sharp, blurry and restored photos: detection rate and keypoint error
    Add --debug to any command for a traceback on errors.
    """


@eval_group.command(name="deblur", context_settings=CONTEXT)
@model_options
@click.option("--pairs", required=True, help="Blurry/sharp pairs: a folder (blur/ + sharp/, x_blur + x_gt, GoPro, "
              "REDS, RSBlur), gopro:PATH?split=test, ..., or synthetic:DOMAIN?sharp=SRC&seed=N.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=0),
              help="Evaluate at most this many pairs, spread evenly over the source (0: all).")
@click.option("--mean-only", is_flag=True, help="Print only the mean row (the JSON still has every image).")
def deblur_command(bundle, deblurrer, converter, backend, precision, json_path, grid, pairs, limit, mean_only):
    """PSNR and SSIM (RGB, 8-bit) per pair and their mean, for the blurry input, the deblurrer alone and the
    deblurrer after the converter, in one run.

    \b
    Examples:
      b2b-eval deblur --deblurrer runs/deblurrer/last.pt --converter runs/conv/best.pt --pairs cam/pairs/
      b2b-eval deblur --bundle bundle --pairs 'synthetic:vertical?sharp=kodak/&count=24' --grid grids/
      b2b-eval deblur --deblurrer NAFNet-GoPro-width32.pth --pairs gopro:GOPRO_Large?split=test --limit 0
    """
    from blur2blur.evaluate.deblur import evaluate_deblur, format_deblur_table
    from blur2blur.evaluate.grids import grid_folder
    from blur2blur.evaluate.restorers import open_restorers
    from blur2blur.runtime.sinks import writable_file
    from blur2blur.train.datasets import open_pairs

    json_file = writable_file(json_path, "--json") if json_path else None
    source = open_pairs(pairs, validate=False)  # unreadable pairs are skipped as they come: --limit reads no more
    with ExitStack() as stack:
        grids = stack.enter_context(grid_folder(grid))
        restorers = open_restorers(bundle, deblurrer, converter, backend, precision)
        for restorer in restorers:
            stack.callback(restorer.close)
        result = evaluate_deblur(source, restorers, limit, grids, pairs)
    _report(format_deblur_table(result, per_image=not mean_only), result["evaluated"], grid, json_file, result)


@eval_group.command(name="handpose", context_settings=CONTEXT)
@model_options
@click.option("--keypoints", multiple=True, type=click.Path(), help="COCO-style JSON of 21-keypoint hands (or a "
              "folder of them); its images are found by file name beside it, or in --images. Repeatable.")
@click.option("--images", type=click.Path(), help="Folder of hand photos (without --keypoints: the hands found in "
              "the sharp photos are the reference).")
@click.option("--domain", help="The blur to put on the photos: a domain of b2b-train synth (see b2b-train synth "
              "--help), e.g. the camera the converter was trained for. Not with --video.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the blur drawn for each photo.")
@click.option("--video", type=click.Path(), help="Your own blurry footage instead of photos (no ground truth): frames "
              "with a hand and landmark jitter, as they are and restored, MediaPipe in video mode.")
@click.option("--max-frames", default=300, show_default=True, type=click.IntRange(min=0),
              help="With --video: at most this many frames from the start (0: all).")
@click.option("--hand-model", type=click.Path(), help="hand_landmarker.task [default: as b2b-run --app handpose].")
def handpose_command(bundle, deblurrer, converter, backend, precision, json_path, grid, keypoints, images, domain,
                     seed, video, max_frames, hand_model):
    """Hand-landmark detection on sharp, blurry and restored photos: the share of hands detected and the mean
    keypoint error as a fraction of the hand's size. With --video, on your own blurry footage instead: frames
    with a hand and landmark jitter between consecutive frames, blurry vs restored.

    \b
    Examples:
      b2b-eval handpose --keypoints hands/annotated_mmpose --domain lowlight \\
          --deblurrer starter --converter runs/conv/best.pt
      b2b-eval handpose --images my_hand_photos/ --domain lowlight --bundle bundle --json hands.json
      b2b-eval handpose --video my_blurry_clip.mp4 --bundle bundle
    """
    from blur2blur.apps.handpose import HandPose
    from blur2blur.evaluate.grids import grid_folder
    from blur2blur.evaluate.handpose import evaluate_handpose, find_photos, format_handpose_table
    from blur2blur.evaluate.restorers import open_restorers
    from blur2blur.runtime.sinks import writable_file
    from blur2blur.train.domains import get_domain

    json_file = writable_file(json_path, "--json") if json_path else None
    if video:
        if keypoints or images or domain or grid:
            raise UserError("--video takes the footage as it is: drop --keypoints, --images, --domain and --grid")
        return _handpose_video(bundle, deblurrer, converter, backend, precision, json_file, video, max_frames,
                               hand_model)
    if not domain:
        raise UserError("--domain: required with photos (the blur to put on them); see b2b-train synth --help")
    try:
        blur = get_domain(domain)
    except UserError as err:
        raise UserError(f"--domain {err}") from None
    photos = find_photos(list(keypoints), images)
    with ExitStack() as stack:
        grids = stack.enter_context(grid_folder(grid))
        most = max(len(photo.hands) for photo in photos)  # annotated hands in one photo; at least the app's 2
        detector = HandPose(hand_model, num_hands=max(2, most), video=False)  # before the models: fails at once
        stack.callback(detector.close)
        restorers = open_restorers(bundle, deblurrer, converter, backend, precision)
        for restorer in restorers:
            stack.callback(restorer.close)
        result = evaluate_handpose(photos, blur, restorers, detector, seed, grids)
    _report(format_handpose_table(result), result["photos"], grid, json_file, result)


def _handpose_video(bundle, deblurrer, converter, backend, precision, json_file, video, max_frames, hand_model):
    from blur2blur.apps.handpose import HandPose
    from blur2blur.evaluate.handpose_video import evaluate_handpose_video, format_video_table
    from blur2blur.evaluate.restorers import open_restorers
    from blur2blur.runtime.sources import open_video

    HandPose(hand_model).close()  # a missing hand model fails before any network loads
    with ExitStack() as stack:
        source = open_video(video)
        stack.callback(source.close)
        restorers = open_restorers(bundle, deblurrer, converter, backend, precision)
        for restorer in restorers:
            stack.callback(restorer.close)
        result = evaluate_handpose_video(source, restorers, lambda: HandPose(hand_model), max_frames)
    _report(format_video_table(result), result["frames"], None, json_file, result)


def eval_main(argv: list[str] | None = None) -> None:
    run_cli(eval_group, argv)


@click.command(name="b2b-bench", context_settings=CONTEXT)
@click.option("--bundle", type=click.Path(), help="Export bundle; PyTorch eager uses the checkpoints it was exported "
              "from, where they still are.")
@click.option("--deblurrer", type=CHECKPOINT, help="Deblurrer checkpoint or `starter` (instead of --bundle: exported to a "
              "temporary bundle first).")
@click.option("--converter", type=click.Path(), help="The camera's converter G checkpoint (with --deblurrer).")
@click.option("--backends", default="pytorch,onnxruntime,tensorrt", show_default=True,
              help="Comma-separated: pytorch (eager), onnxruntime, tensorrt (where it runs).")
@click.option("--sizes", default="640x360,1280x720", show_default=True, help="Comma-separated frame sizes, WxH.")
@click.option("--precisions", default="fp32,fp16", show_default=True, help="Comma-separated: fp32, fp16.")
@click.option("--frames", default=20, show_default=True, type=click.IntRange(min=1), help="Timed frames per "
              "configuration.")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0), help="Untimed frames first.")
@click.option("--json", "json_path", type=click.Path(), help="Write the figures to this JSON file.")
def bench_command(bundle, deblurrer, converter, backends, sizes, precisions, frames, warmup, json_path):
    """Frames/s and latency p50/p95 of the fused model for backends x frame sizes x precisions, with its GFLOP
    per frame and the GFLOP/s achieved. Configurations that cannot run here are listed with the reason.

    \b
    Examples:
      b2b-bench --bundle bundle
      b2b-bench --deblurrer runs/deblurrer/last.pt --converter runs/conv/best.pt --sizes 1280x720 --json speed.json
    """
    from blur2blur.evaluate.speed import BACKENDS, PRECISIONS, format_bench_table, run_bench
    from blur2blur.images import parse_frame_size
    from blur2blur.runtime.sinks import writable_file

    json_file = writable_file(json_path, "--json") if json_path else None
    chosen_backends = _choices(backends, BACKENDS, "--backends")
    chosen_precisions = _choices(precisions, PRECISIONS, "--precisions")
    frame_sizes = tuple(parse_frame_size(size, "--sizes") for size in _items(sizes, "--sizes"))
    result = run_bench(bundle, deblurrer, converter, chosen_backends, frame_sizes, chosen_precisions, frames, warmup)
    click.echo(format_bench_table(result))
    if json_file:
        _write_json(json_file, result)


def _items(text: str, option: str) -> list[str]:
    items = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if not items:
        raise UserError(f"{option}: name at least one")
    return items


def _choices(text: str, known: tuple[str, ...], option: str) -> tuple[str, ...]:
    items = _items(text, option)
    unknown = [item for item in items if item not in known]
    if unknown:
        raise UserError(f"{option} {', '.join(unknown)}: choose from {', '.join(known)}")
    return tuple(items)


def bench_main(argv: list[str] | None = None) -> None:
    run_cli(bench_command, argv)
