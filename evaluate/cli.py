"""b2b-eval: how much restoring helps, on pairs (`deblur`) and on hand pose (`handpose`); b2b-bench: what it costs."""

from __future__ import annotations

import functools
import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

import click

from blur2blur.commands import CHECKPOINT, CONTEXT, command_line, run_cli
from blur2blur.errors import UserError
from blur2blur.runtime.bundle import read_meta

NO_VERIFY = click.option("--no-verify", is_flag=True, help="Use a --bundle whose files no longer match the sha256 "
                         "in its meta.json (checked by default).")


FORCE = click.option("--force", is_flag=True, help="Replace a --json file that exists. (--grid and --report folders "
                     "are new, empty, or one an earlier run wrote, and are replaced as a whole.)")


def _check_eval_outputs(inputs: dict, json_path: str | None, force: bool, grid: str | None = None,
                        report: str | None = None) -> None:
    """The output rule (outputs.py), checked before anything runs."""
    from blur2blur.files.outputs import check_outputs, owned_folder

    inputs = {**inputs, "the bundle's checkpoints": _recorded_checkpoints(inputs.get("--bundle"))}
    check_outputs(inputs, files={"--json": json_path}, folders={"--grid": grid, "--report": report}, force=force)
    if grid:
        owned_folder(grid, "--grid", "grids")
    if report:
        owned_folder(report, "--report", "report")


def _recorded_checkpoints(bundle: str | None) -> list[str]:
    """The checkpoint files a bundle's meta.json names (eager PyTorch reads them); none where it is no bundle (which
    fails later, with its own message)."""
    try:
        sources = read_meta(Path(bundle)).get("sources") if bundle else None
    except UserError:
        return []
    if not isinstance(sources, dict):
        return []
    return [str(source["path"]) for source in sources.values() if isinstance(source, dict) and source.get("path")]


def model_options(command):
    """The restorations to compare: a bundle, or checkpoints."""
    options = [
        click.option("--bundle", type=click.Path(), help="Export bundle (b2b-export), run by the runtime's engine."),
        click.option("--deblurrer", type=CHECKPOINT, help="Deblurrer checkpoint, `starter` or `nafnet-gopro-w32`, run "
                     "in PyTorch (instead of --bundle)."),
        click.option("--converter", type=click.Path(), help="The camera's converter G checkpoint (with --deblurrer): "
                     "adds the deblurrer after G."),
        click.option("--backend", default="auto", show_default=True,
                     type=click.Choice(["auto", "tensorrt", "openvino", "onnxruntime"]),
                     help="Engine for --bundle, as b2b-run."),
        click.option("--precision", default="auto", show_default=True,
                     type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
                     help="Graph for --bundle, as b2b-run."),
        NO_VERIFY,
        click.option("--json", "json_path", type=click.Path(), help="Write every figure to this JSON file."),
        click.option("--grid", type=click.Path(), help="Write a labelled PNG per image into this folder."),
        click.option("--report", type=click.Path(), help="Write one HTML page (DIR/index.html, files beside it): the "
                     "table, the grids and the training curves of the checkpoints' runs."),
        FORCE,
    ]
    return functools.reduce(lambda cmd, option: option(cmd), reversed(options), command)


def _write_json(path, result: dict) -> None:
    from blur2blur.files.atomic import write_atomic

    write_atomic(path, (json.dumps(result, indent=2) + "\n").encode())
    click.echo(f"wrote {path}")


def _report(table: str, count: int, grid: str | None, json_file, result: dict, report: str | None = None,
            checkpoints: list[str] = (), grid_given: bool = True) -> None:
    """The table, then what was written: grids (said where `--grid` was given, not a report's temporary folder),
    JSON, and the HTML page of `--report`."""
    click.echo(table)
    if grid and grid_given:
        click.echo(f"wrote {count} grids to {grid}")
    if json_file:
        _write_json(json_file, result)
    if report:
        from blur2blur.evaluate.report import build_report

        index = build_report(report, command_line(), result, grid, checkpoints)
        click.echo(f"wrote {index}")


def _grid_for_report(grid: str | None, report: str | None, stack: ExitStack) -> str | None:
    """Where the grids go: --grid, else (with --report only) a temporary folder the page copies them from."""
    if grid or not report:
        return grid
    return stack.enter_context(tempfile.TemporaryDirectory(prefix="b2b-grids-")) + "/grids"


def _checkpoints(bundle: str | None, deblurrer: str | None, converter: str | None) -> list[str]:
    """The checkpoint files behind the restorations (a bundle's, as its meta.json records them)."""
    if not bundle:
        return [c for c in (deblurrer, converter) if c]
    from blur2blur.runtime.bundle import open_bundle

    return [s.get("path", "") for s in (open_bundle(bundle, verify=False).meta.get("sources") or {}).values()]


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
def deblur_command(bundle, deblurrer, converter, backend, precision, no_verify, json_path, grid, report, force, pairs,
                   limit, mean_only):
    """PSNR and SSIM (RGB, 8-bit) per pair and their mean, for the blurry input, the deblurrer alone and the
    deblurrer after the converter, in one run.

    \b
    Examples:
      b2b-eval deblur --deblurrer runs/deblurrer/last.pt --converter runs/conv/best.pt --pairs cam/pairs/
      b2b-eval deblur --bundle bundle --pairs 'synthetic:vertical?sharp=kodak/&count=24' --grid grids/
      b2b-eval deblur --deblurrer NAFNet-GoPro-width32.pth --pairs gopro:GOPRO_Large?split=test --limit 0
    """
    from blur2blur.data.sources import open_pairs
    from blur2blur.evaluate.deblur import evaluate_deblur, format_deblur_table
    from blur2blur.evaluate.grids import grid_folder
    from blur2blur.evaluate.restorers import open_restorers
    from blur2blur.runtime.sinks import writable_file

    _check_eval_outputs({"--bundle": bundle, "--deblurrer": deblurrer, "--converter": converter, "--pairs": pairs},
                        json_path, force, grid, report)
    json_file = writable_file(json_path, "--json") if json_path else None
    source = open_pairs(pairs, validate=False)  # unreadable pairs are skipped as they come: --limit reads no more
    with ExitStack() as outer:
        grid_dir = _grid_for_report(grid, report, outer)
        with ExitStack() as stack:
            grids = stack.enter_context(grid_folder(grid_dir))
            restorers = open_restorers(stack, bundle, deblurrer, converter, backend, precision, not no_verify)
            result = evaluate_deblur(source, restorers, limit, grids, pairs)
        _report(format_deblur_table(result, per_image=not mean_only), result["evaluated"], grid_dir, json_file, result,
                report, _checkpoints(bundle, deblurrer, converter), grid_given=bool(grid))


@eval_group.command(name="handpose", context_settings=CONTEXT)
@model_options
@click.option("--keypoints", multiple=True, type=click.Path(), help="COCO-style JSON of 21-keypoint hands (or a "
              "folder of them); its images are found by file name beside it, or in --images. Repeatable.")
@click.option("--images", type=click.Path(), help="Folder of hand photos (without --keypoints: the hands found in "
              "the sharp photos are the reference).")
@click.option("--domain", help="The blur to put on the photos: a domain of b2b-train synth (see b2b-train synth "
              "--help), e.g. the camera the converter was trained for. Not with --video.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the blur drawn for each photo.")
@click.option("--draws", default=1, show_default=True, type=click.IntRange(min=1),
              help="Blur each photo this many times (different blurs of the domain): more hands to measure on.")
@click.option("--video", type=click.Path(), help="Your own blurry footage instead of photos (no ground truth): frames "
              "with a hand and landmark jitter, as they are and restored, MediaPipe in video mode.")
@click.option("--max-frames", default=300, show_default=True, type=click.IntRange(min=0),
              help="With --video: at most this many frames from the start (0: all).")
@click.option("--hand-model", type=click.Path(), help="hand_landmarker.task [default: as b2b-run --app handpose].")
def handpose_command(bundle, deblurrer, converter, backend, precision, no_verify, json_path, grid, report, force,
                     keypoints, images, domain, seed, draws, video, max_frames, hand_model):
    """Hand-landmark detection on sharp, blurry and restored photos: the share of hands detected and the mean
    keypoint error as a fraction of the hand's size. With --video, on your own blurry footage instead: frames
    with a hand and landmark jitter between consecutive frames, blurry vs restored.

    \b
    Examples:
      b2b-eval handpose --keypoints hands/annotated_mmpose --domain lowlight \\
          --deblurrer starter --converter runs/conv/best.pt
      b2b-eval handpose --images my_hand_photos/ --domain lowlight --bundle bundle --draws 4 --json hands.json
      b2b-eval handpose --video my_blurry_clip.mp4 --bundle bundle
    """
    from blur2blur.apps.hand_model import hand_model_inputs
    from blur2blur.apps.handpose import HandPose
    from blur2blur.data.blur.domains import get_domain
    from blur2blur.evaluate.grids import grid_folder
    from blur2blur.evaluate.handpose import evaluate_handpose, find_photos, format_handpose_table
    from blur2blur.evaluate.restorers import open_restorers
    from blur2blur.runtime.sinks import writable_file

    _check_eval_outputs({"--bundle": bundle, "--deblurrer": deblurrer, "--converter": converter, "--images": images,
                         "--video": video, "--keypoints": keypoints, **hand_model_inputs(hand_model)},
                        json_path, force, grid, report)
    json_file = writable_file(json_path, "--json") if json_path else None
    if video:
        if keypoints or images or domain or grid or report or draws != 1:
            raise UserError("--video takes the footage as it is: drop --keypoints, --images, --domain, --draws, --grid "
                            "and --report")
        return _handpose_video(bundle, deblurrer, converter, backend, precision, no_verify, json_file, video,
                               max_frames, hand_model)
    if not domain:
        raise UserError("--domain: required with photos (the blur to put on them); see b2b-train synth --help")
    try:
        blur = get_domain(domain)
    except UserError as err:
        raise UserError(f"--domain {err}") from None
    photos = find_photos(list(keypoints), images)
    with ExitStack() as outer:
        grid_dir = _grid_for_report(grid, report, outer)
        with ExitStack() as stack:
            grids = stack.enter_context(grid_folder(grid_dir))
            most = max(len(photo.hands) for photo in photos)  # annotated hands in one photo; at least the app's 2
            detector = HandPose(hand_model, num_hands=max(2, most), video=False, quiet=True)  # fails at once
            stack.callback(detector.close)
            restorers = open_restorers(stack, bundle, deblurrer, converter, backend, precision, not no_verify)
            result = evaluate_handpose(photos, blur, restorers, detector, seed, grids, draws)
        _report(format_handpose_table(result), len(result["images"]), grid_dir, json_file, result, report,
                _checkpoints(bundle, deblurrer, converter), grid_given=bool(grid))


def _handpose_video(bundle, deblurrer, converter, backend, precision, no_verify, json_file, video, max_frames,
                    hand_model):
    from blur2blur.apps.handpose import HandPose
    from blur2blur.evaluate.handpose_video import evaluate_handpose_video, format_video_table
    from blur2blur.evaluate.restorers import open_restorers
    from blur2blur.runtime.sources import open_source

    HandPose(hand_model).close()  # a missing hand model fails before any network loads
    with ExitStack() as stack:
        source = open_source(video, kind="video", option="--video")
        stack.callback(source.close)
        restorers = open_restorers(stack, bundle, deblurrer, converter, backend, precision, not no_verify)
        result = evaluate_handpose_video(source, restorers, lambda: HandPose(hand_model, quiet=True), max_frames)
    _report(format_video_table(result), result["frames"], None, json_file, result)


@eval_group.command(name="report", context_settings=CONTEXT)
@click.option("--out", required=True, type=click.Path(), help="Folder of the page: OUT/index.html and OUT/files/ (new, "
              "empty, or an earlier report, which is replaced as a whole).")
@click.option("--eval", "eval_json", type=click.Path(), help="A b2b-eval deblur or handpose --json file.")
@click.option("--grids", type=click.Path(), help="The folder of its comparison grids (--grid).")
@click.option("--checkpoint", "checkpoints", multiple=True, type=click.Path(), help="A checkpoint whose run's "
              "curves.png to show (repeatable).")
@click.option("--stats", type=click.Path(), help="A b2b-run --stats JSON file.")
@click.option("--bench", type=click.Path(), help="A b2b-bench --json file.")
@click.option("--video", type=click.Path(), help="An output video of b2b-run (shown as WebM).")
def report_command(out, eval_json, grids, checkpoints, stats, bench, video):
    """One HTML page from results already written: each labelled with the file it came from, all files beside it,
    relative links only (copy the folder anywhere). `make demo` writes demo_out/report/ this way.

    \b
    Example:
      b2b-eval report --out report --eval eval.json --grids grids/ --checkpoint runs/conv/best.pt \\
          --stats timing.json --bench bench.json --video restored.mp4
    """
    from blur2blur.evaluate.report import build_report, load_json
    from blur2blur.files.outputs import check_outputs, owned_folder

    check_outputs({"--eval": eval_json, "--grids": grids, "--checkpoint": checkpoints, "--stats": stats,
                   "--bench": bench, "--video": video}, folders={"--out": out})
    owned_folder(out, "--out", "report")
    if video and not Path(video).is_file():
        raise UserError(f"--video {video}: no such file")
    if grids and not Path(grids).is_dir():
        raise UserError(f"--grids {grids}: no such folder")
    given = {"evaluation": eval_json, "stats": stats, "bench": bench, "grids": grids}
    index = build_report(out, "b2b-eval report", load_json(eval_json, "--eval") if eval_json else None, grids,
                         list(checkpoints), load_json(stats, "--stats") if stats else None,
                         load_json(bench, "--bench") if bench else None, video,
                         {key: str(value) for key, value in given.items() if value}, option="--out")
    click.echo(f"wrote {index}")


def eval_main(argv: list[str] | None = None) -> None:
    run_cli(eval_group, argv)


@click.command(name="b2b-bench", context_settings=CONTEXT)
@click.option("--bundle", type=click.Path(), help="Export bundle; PyTorch eager uses the checkpoints it was exported "
              "from, where they still are.")
@click.option("--deblurrer", type=CHECKPOINT, help="Deblurrer checkpoint, `starter` or `nafnet-gopro-w32` (instead "
              "of --bundle: exported to a temporary bundle first).")
@click.option("--converter", type=click.Path(), help="The camera's converter G checkpoint (with --deblurrer).")
@click.option("--backends", default="pytorch,onnxruntime,openvino,tensorrt", show_default=True,
              help="Comma-separated: pytorch (eager), onnxruntime, openvino (x86-64 CPUs), tensorrt (where it runs).")
@click.option("--sizes", default="640x360,1280x720", show_default=True, help="Comma-separated frame sizes, WxH.")
@click.option("--precisions", default="fp32,fp16,bf16", show_default=True,
              help="Comma-separated: fp32, fp16 (the FP16 graph), bf16 (OpenVINO on CPUs with AMX or AVX512-BF16).")
@click.option("--frames", default=20, show_default=True, type=click.IntRange(min=1), help="Timed frames per "
              "configuration.")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0), help="Untimed frames first.")
@NO_VERIFY
@click.option("--json", "json_path", type=click.Path(), help="Write the figures to this JSON file.")
@click.option("--force", is_flag=True, help="Replace a --json file that exists.")
def bench_command(bundle, deblurrer, converter, backends, sizes, precisions, frames, warmup, no_verify, json_path,
                  force):
    """Frames/s and latency p50/p95 of the fused model for backends x frame sizes x precisions, with its GFLOP
    per frame, the GFLOP/s achieved and their share of this machine's matrix-multiply peak at that precision
    (measured once per run). Configurations that cannot run here are listed with the reason.

    \b
    Examples:
      b2b-bench --bundle bundle
      b2b-bench --deblurrer runs/deblurrer/last.pt --converter runs/conv/best.pt --sizes 1280x720 --json speed.json
    """
    from blur2blur.commands import parse_frame_size
    from blur2blur.evaluate.speed import BACKENDS, PRECISIONS, format_bench_table, run_bench
    from blur2blur.files.outputs import check_outputs
    from blur2blur.runtime.sinks import writable_file

    check_outputs({"--bundle": bundle, "--deblurrer": deblurrer, "--converter": converter,
                   "the bundle's checkpoints": _recorded_checkpoints(bundle)}, files={"--json": json_path}, force=force)
    json_file = writable_file(json_path, "--json") if json_path else None
    chosen_backends = _choices(backends, BACKENDS, "--backends")
    chosen_precisions = _choices(precisions, PRECISIONS, "--precisions")
    frame_sizes = tuple(parse_frame_size(size, "--sizes") for size in _items(sizes, "--sizes"))
    result = run_bench(bundle, deblurrer, converter, chosen_backends, frame_sizes, chosen_precisions, frames, warmup,
                       not no_verify)
    click.echo(format_bench_table(result))
    if json_file:
        _write_json(json_file, result)
    if not result["rows"]:  # scripts must not read an empty table as success
        raise UserError("nothing could be timed here (see the reasons above): choose --backends/--precisions that "
                        "run, or export the bundle with --fp16")


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
