"""b2b-run: stream a camera, video or image folder through an export bundle into an app."""

from __future__ import annotations

import json
import logging
import signal

import click

from blur2blur.errors import run_cli

log = logging.getLogger("blur2blur")


def stop_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C: the output file is closed and the report printed."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


@click.command(name="b2b-run", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--bundle", required=True, type=click.Path(), help="Export bundle folder made by b2b-export.")
@click.option("--camera", help="Camera: a V4L2 device path (/dev/video0) or an index (0).")
@click.option("--video", type=click.Path(), help="Video file to deblur (every frame is processed).")
@click.option("--images", type=click.Path(), help="Folder of images to deblur, in name order.")
@click.option("--size", help="Camera resolution WIDTHxHEIGHT, e.g. 1280x720.")
@click.option("--fps", type=float, help="Camera frame rate to ask for.")
@click.option("--output", type=click.Path(), help="Write the app's frames: a video (.mp4) or a folder of PNGs.")
@click.option("--app", "app_name", default="none", show_default=True, help="What consumes the restored frames (none, side-by-side, ...).")
@click.option("--backend", default="auto", show_default=True, type=click.Choice(["auto", "onnxruntime", "tensorrt"]),
              help="Inference engine; auto: ONNX Runtime on the best provider present (CUDA, else CPU).")
@click.option("--stats", type=click.Path(), help="Write the timing report as JSON to this file.")
@click.option("--records", type=click.Path(), help="Write the app's records as JSON lines to this file.")
@click.option("--headless", is_flag=True, help="No window (automatic where no display exists).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames.")
def main_command(bundle, camera, video, images, size, fps, output, app_name, backend, stats, records, headless, max_frames):
    """Deblur frames with a blur2blur bundle and feed them to an app.

    \b
    Examples:
      b2b-run --bundle bundle --video in.mp4 --output out.mp4 --headless
      b2b-run --bundle bundle --camera /dev/video0 --app side-by-side
    Add --debug to any command for a traceback on errors.
    """
    from blur2blur.apps import load_app
    from blur2blur.images import parse_frame_size, write_atomic
    from blur2blur.runtime import pipeline
    from blur2blur.runtime.bundle import open_bundle
    from blur2blur.runtime.engines import open_engine
    from blur2blur.runtime.sinks import WindowSink, display_available, open_output, writable_file
    from blur2blur.runtime.sources import open_source

    loaded = open_bundle(bundle)
    stats_path = writable_file(stats, "--stats") if stats else None
    records_path = writable_file(records, "--records") if records else None
    source = open_source(camera, video, images, parse_frame_size(size, "--size") if size else None, fps)
    sinks = [open_output(output, source.fps)] if output else []
    if not headless and display_available():
        sinks.append(WindowSink())
    app = load_app(app_name)
    engine = open_engine(loaded, backend)
    if not sinks and not records and not stats:
        log.info("no --output, --records or --stats and no window: frames are restored and discarded")
    log.info("%s -> %s -> %s", f"{source.kind} {source.spec}", engine.name, app_name)
    stop_on_sigterm()
    report = pipeline.run(source, engine, app, sinks, records_path, max_frames)
    click.echo(pipeline.format_report(report))
    if stats_path:
        write_atomic(stats_path, (json.dumps(report, indent=2) + "\n").encode())
    if output:
        click.echo(f"wrote {output}")


def main(argv: list[str] | None = None) -> None:
    run_cli(main_command, argv)
