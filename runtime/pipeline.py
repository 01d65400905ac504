"""The streaming loop: source -> engine -> app -> sinks, every stage timed."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from blur2blur.apps import App
from blur2blur.runtime.engines import Engine
from blur2blur.runtime.sinks import FrameSink
from blur2blur.runtime.sources import FrameSource

log = logging.getLogger(__name__)
STAGES = ("capture", "infer", "app", "write")


def summarise(samples: dict[str, list[float]], frames: int, seconds: float) -> dict:
    """Per-stage p50/p95/mean in milliseconds, and the overall frame rate."""
    stages = {}
    for stage in STAGES:
        values = np.asarray(samples.get(stage, [0.0])) * 1000.0
        stages[stage] = {
            "p50_ms": round(float(np.percentile(values, 50)), 3),
            "p95_ms": round(float(np.percentile(values, 95)), 3),
            "mean_ms": round(float(values.mean()), 3),
        }
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2) if seconds else 0.0, "stages": stages}


def run(
    source: FrameSource,
    engine: Engine,
    app: App,
    sinks: Sequence[FrameSink],
    records_path: Path | None = None,
    max_frames: int | None = None,
    progress: bool = True,
) -> dict:
    """Restore every frame of `source` and hand it to `app` and `sinks`; return the timing report.

    Ctrl-C ends the run early and keeps the outputs playable; an error discards unfinished outputs.
    """
    from tqdm import tqdm

    samples: dict[str, list[float]] = defaultdict(list)
    frames = 0
    interrupted = finished = False
    start = time.perf_counter()
    records = open(records_path, "w") if records_path else None
    bar = tqdm(desc="frames", unit="f", disable=not progress, leave=False)
    iterator = iter(source)
    try:
        while max_frames is None or frames < max_frames:
            t0 = time.perf_counter()
            frame = next(iterator, None)
            if frame is None:
                break
            t1 = time.perf_counter()
            restored = engine.infer(frame[None])[0]
            t2 = time.perf_counter()
            shown, frame_records = app.process(frame, restored, int(frames * 1000 / source.fps))
            t3 = time.perf_counter()
            for sink in sinks:
                sink.write(shown)
            if records is not None:
                for record in frame_records:
                    records.write(json.dumps({"frame": frames, **record}) + "\n")
            t4 = time.perf_counter()
            for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                samples[stage].append(seconds)
            frames += 1
            bar.update()
        finished = True
    except KeyboardInterrupt:
        interrupted = finished = True
        log.info("stopping: interrupted after %d frames", frames)
    finally:
        bar.close()
        for closeable in (source, app, *([records] if records else [])):
            closeable.close()
        for sink in sinks:
            sink.close(complete=finished)
    report = summarise(samples, frames, time.perf_counter() - start)
    report.update(source=f"{source.kind}:{source.spec}", engine=engine.name, dropped=0,
                  skipped_corrupt=source.skipped, interrupted=interrupted)
    return report


def format_report(report: dict) -> str:
    """The timing report as a small table."""
    lines = [f"{report['frames']} frames in {report['seconds']:.2f} s = {report['fps']:.2f} frames/s "
             f"({report['engine']}); dropped {report['dropped']}, skipped corrupt {report['skipped_corrupt']}",
             f"{'stage':<8} {'p50 ms':>9} {'p95 ms':>9}"]
    for stage, figures in report["stages"].items():
        lines.append(f"{stage:<8} {figures['p50_ms']:>9.2f} {figures['p95_ms']:>9.2f}")
    return "\n".join(lines)
