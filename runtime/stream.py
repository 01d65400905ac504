"""A whole b2b-run as one library call: a bundle's engine, an app and the sinks around the pipeline."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from blur2blur.apps import load_app
from blur2blur.errors import UserError
from blur2blur.runtime import pipeline
from blur2blur.runtime.bundle import Bundle
from blur2blur.runtime.engines import open_engine
from blur2blur.runtime.sinks import RecordsFile, Sink, WindowSink, open_output
from blur2blur.runtime.sources import FrameSource

log = logging.getLogger("blur2blur")


def stream(bundle: Bundle, source: FrameSource, app_name: str = "none", *, hand_model: str | None = None,
           output: str | None = None, records: Path | None = None, window: bool = False, side_by_side: bool = False,
           serve: str | None = None, serve_token: str | None = None, backend: str = "auto", precision: str = "auto",
           batch: int = 1, max_frames: int | None = None, stats_every: float | None = None,
           on_stats: Callable[[dict], None] | None = None) -> dict:
    """Restore `source`'s frames with `bundle` into the app `app_name` and the sinks asked for (a video file or a
    folder of PNGs at `output`, the app's `records`, a `window`, the live view at `serve`); the timing report.

    Takes `source` over: it, the app and the sinks are closed however the run ends (outputs complete on a stop,
    discarded on an error), the engine when the run ends. Its errors name b2b-run's options.
    """
    if bundle.bounds and batch > bundle.bounds.batch:
        source.close()
        raise UserError(f"--batch {batch}: the bundle takes at most {bundle.bounds.batch} frames at a time "
                        f"(export it with --batch {batch})")
    with ExitStack() as held:  # the engine: closed when the run ends, however it ends
        with ExitStack() as setup:  # the source, the app and the sinks: closed here only if the run cannot start
            setup.callback(source.close)
            app = load_app(app_name, hand_model=hand_model)
            setup.callback(app.close)
            if records and not getattr(app, "emits_records", True):
                raise UserError(f"--records: the {app_name} app emits no records (--app handpose does)")
            paired = side_by_side or getattr(app, "beside_input", False)
            sinks: list[Sink] = []

            def add(sink: Sink) -> Sink:  # a run that could not start leaves nothing
                sinks.append(sink)
                setup.callback(sink.close, complete=False)
                return sink

            if output:
                add(open_output(output, source.fps, paired))
            if window:
                add(WindowSink(paired=paired))
            if records:
                add(RecordsFile(records))
            engine = open_engine(bundle, backend, precision)
            held.callback(engine.close)
            log.info("backend: %s (%s)", engine.name, engine.why)  # the run's first line: what restores its frames
            if not sinks and not on_stats and not serve:
                log.info("no --output, --records or --stats and no window: frames are restored and discarded")
            log.info("%s %s -> %s -> %s", source.kind, source.spec, engine.name, app_name)
            if serve:
                from blur2blur.runtime.serve import LiveView

                live = add(LiveView(serve, serve_token, {"bundle": str(bundle.path), "app": app_name,
                                                         "backend": engine.name}))
                log.info("live view: open %s", live.url)
            setup.pop_all()  # from here on, the pipeline closes them
        return pipeline.run(source, engine, app, sinks, max_frames=max_frames, batch=batch, stats_every=stats_every,
                            on_stats=on_stats)
