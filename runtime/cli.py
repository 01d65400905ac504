"""b2b-run: stream a camera, stream, video or image folder through an export bundle into an app;
`b2b-run fetch-hand-model` provisions the hand-pose app's model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from blur2blur.commands import CONTEXT, run_cli
from blur2blur.errors import UserError

log = logging.getLogger("blur2blur")


@click.command(name="b2b-run", context_settings=CONTEXT)
@click.option("--bundle", required=True, type=click.Path(), help="Export bundle folder made by b2b-export.")
@click.option("--camera", help="Camera: a V4L2 device path (/dev/video0) or an index (0). Live: drops frames "
              "when behind.")
@click.option("--camera-format", default="MJPG", show_default=True, type=click.Choice(["MJPG", "YUYV"]),
              help="Camera pixel format; MJPG keeps USB cameras at full frame rate at HD sizes.")
@click.option("--size", metavar="WxH", help="Camera resolution WIDTHxHEIGHT, e.g. 1280x720.")
@click.option("--fps", type=click.FloatRange(min=1), help="Camera frame rate to ask for.")
@click.option("--url", help="RTSP or HTTP stream (through OpenCV's FFmpeg). Live: drops frames when behind.")
@click.option("--video", type=click.Path(), help="Video file (every frame is processed, none dropped).")
@click.option("--images", type=click.Path(), help="Folder of images, in natural name order (none dropped).")
@click.option("--loop", is_flag=True, help="Start --video or --images again at the end (until Ctrl-C or --max-frames).")
@click.option("--reconnect", is_flag=True, help="Reopen a camera or stream that stops, with backoff (else the run "
              "ends).")
@click.option("--output", type=click.Path(), help="Write the shown frames: a video (.mp4, ...) or a folder of PNGs.")
@click.option("--force", is_flag=True, help="Replace --output, --records and --stats files that exist.")
@click.option("--side-by-side", is_flag=True, help="Show and write the input beside the app's frame.")
@click.option("--headless", is_flag=True, help="No window (automatic where no display exists).")
@click.option("--app", "app_name", default="none", show_default=True,
              help="What consumes the restored frames: none, side-by-side, handpose, or an installed plug-in.")
@click.option("--hand-model", type=click.Path(), help="handpose: hand_landmarker.task [default: $B2B_HAND_MODEL, "
              "else the one `b2b-run fetch-hand-model` put in ~/.cache/blur2blur].")
@click.option("--records", type=click.Path(), help="Write the app's records, one JSON line per frame.")
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(["auto", "tensorrt", "openvino", "onnxruntime"]),
              help="auto: TensorRT where it imports with a GPU (the engine is built on first use and cached), else "
                   "OpenVINO on an x86-64 CPU (compiled per frame size and cached), else ONNX Runtime.")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
              help="auto: the bundle's for TensorRT; bf16 on OpenVINO where the CPU has AMX or AVX512-BF16, else "
                   "fp32; fp16 on ONNX Runtime's CUDA and fp32 on its CPU. OpenVINO runs fp32 or bf16, checked "
                   "against ONNX Runtime FP32 the first time (40 dB).")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1),
              help="Frames per inference (up to the bundle's --batch); live sources take what is waiting.")
@click.option("--stats", type=click.Path(), help="Write the timing report as JSON to this file.")
@click.option("--stats-every", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Also write --stats every SECONDS while the run goes on (\"running\": true until it ends).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames.")
@click.option("--no-verify", is_flag=True, help="Run a bundle whose files no longer match the sha256 in its meta.json "
              "(checked at start by default).")
@click.option("--serve", metavar="[HOST:]PORT", help="Live view in a browser: the video (input | restored, with the "
              "app's drawing) and the figures at http://HOST:PORT/ (host 127.0.0.1 unless given; port 0: any free).")
@click.option("--serve-token", metavar="TOKEN", help="Needed off loopback: viewers must give it (?token=TOKEN or an "
              "X-B2B-Token header).")
@click.option("--serve-no-token", is_flag=True, help="Off loopback, let anyone who can reach the port watch.")
def main_command(bundle, camera, camera_format, size, fps, url, video, images, loop, reconnect, output, force,
                 side_by_side, headless, app_name, hand_model, records, backend, precision, batch, stats, stats_every,
                 max_frames, no_verify, serve, serve_token, serve_no_token):
    """Deblur frames with a blur2blur bundle and feed them to an app.

    Capture, inference and the app run on their own threads. Frames outside the bundle's shapes are brought
    inside: larger ones are shrunk to fit and the result scaled back, smaller ones edge-padded and the padding
    cropped. Ctrl-C or SIGTERM stops the run and leaves every output complete; an output that cannot be written
    completely (a full disk) fails the run and keeps the previous file. Outputs are locked: a second run writing
    the same file is refused. The bundle's files are checked against meta.json's sha256 first (--no-verify skips
    it). The run ends with a timing report (per stage p50/p95 ms over the latest 4096 frames, mean and max over
    all, frames/s, dropped and corrupt frames); memory stays bounded however long it runs.

    \b
    Examples:
      b2b-run --bundle bundle --camera /dev/video0 --app handpose
      b2b-run --bundle bundle --video in.mp4 --output out.mp4 --side-by-side --headless --stats timing.json
      b2b-run --bundle bundle --url rtsp://camera.local/stream --reconnect --app handpose --records hands.jsonl
      b2b-run --bundle bundle --camera 0 --app handpose --headless --serve 8080    (open http://127.0.0.1:8080/)
      b2b-run --bundle bundle --camera 0 --headless --serve 0.0.0.0:8080 --serve-token s3cret
      b2b-run fetch-hand-model        (the hand-pose model, into ~/.cache/blur2blur)
    Add --debug to any command for a traceback on errors.
    """
    from blur2blur.apps.hand_model import hand_model_inputs
    from blur2blur.commands import parse_frame_size
    from blur2blur.files.atomic import write_atomic
    from blur2blur.files.outputs import check_outputs
    from blur2blur.runtime.bundle import open_bundle
    from blur2blur.runtime.pipeline import format_report
    from blur2blur.runtime.serve import check_access
    from blur2blur.runtime.sinks import display_available, writable_file
    from blur2blur.runtime.sources import open_source
    from blur2blur.runtime.stream import stream

    given = [(kind, spec) for kind, spec in (("camera", camera), ("url", url), ("video", video), ("images", images))
             if spec]
    if len(given) != 1:
        raise UserError("give exactly one source: --camera DEVICE, --url URL, --video FILE or --images DIR")
    (kind, spec), = given
    if stats_every and not stats:
        raise UserError("--stats-every: give the file to write with --stats")
    if (serve_token or serve_no_token) and not serve:
        raise UserError("--serve-token and --serve-no-token go with --serve [HOST:]PORT")
    if serve:
        check_access(serve, serve_token, serve_no_token)
    video_output = output and Path(output).suffix
    check_outputs({"--bundle": bundle, "--video": video, "--images": images, "--camera": camera,
                   **hand_model_inputs(hand_model)},
                  files={"--output": output if video_output else None, "--records": records, "--stats": stats},
                  folders={"--output": None if video_output else output}, force=force)
    loaded = open_bundle(bundle, verify=not no_verify)
    stats_path = writable_file(stats, "--stats") if stats else None
    records_path = writable_file(records, "--records") if records else None
    frame_size = parse_frame_size(size, "--size") if size else None

    def write_stats(report: dict, running: bool = True) -> None:
        write_atomic(stats_path, (json.dumps({**report, "running": running}, indent=2) + "\n").encode())

    source = open_source(spec, kind=kind, option=f"--{kind}", size=frame_size, fps=fps, camera_format=camera_format,
                         loop=loop, reconnect=reconnect)
    report = stream(loaded, source, app_name, hand_model=hand_model, output=output, records=records_path,
                    window=not headless and display_available(), side_by_side=side_by_side, serve=serve,
                    serve_token=serve_token, backend=backend, precision=precision, batch=batch,
                    max_frames=max_frames, stats_every=stats_every, on_stats=write_stats if stats_path else None)
    click.echo(format_report(report))
    if stats_path:
        write_stats(report, running=False)
    for path in (output, records):
        if path:
            click.echo(f"wrote {path}")


@click.command(name="b2b-run fetch-hand-model", context_settings=CONTEXT)
@click.option("--out", type=click.Path(), help="Where to write hand_landmarker.task [default: ~/.cache/blur2blur/...].")
@click.option("--force", is_flag=True, help="Fetch it again even if it is there.")
def fetch_command(out, force):
    """Provision MediaPipe's hand_landmarker.task for --app handpose.

    Downloads the official model (or from $B2B_HAND_MODEL_URL); where that fails, builds the same model from the
    two networks inside PyPI's mediapipe 0.10.21 wheel, checked by sha256.
    """
    from blur2blur.apps.hand_model import fetch_hand_model

    path, origin = fetch_hand_model(out, force)
    click.echo(f"hand model {path}: {origin}")


def main(argv: list[str] | None = None) -> None:
    run_cli(main_command, argv, {"fetch-hand-model": fetch_command})
