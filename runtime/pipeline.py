"""The streaming pipeline: capture, inference, and app + sinks on their own threads, joined by bounded queues.

Live sources (cameras, streams) drop their oldest waiting frame when inference or the app falls behind, so latency
stays bounded; files and folders never drop. The app and the sinks run on the calling (main) thread, where OpenCV's
window and Ctrl-C live. Every stage is timed per frame.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from blur2blur.apps import App
from blur2blur.runtime.engines import FittingEngine
from blur2blur.runtime.sinks import Shown, Sink
from blur2blur.runtime.sources import FrameSource
from blur2blur.runtime.timings import StageTimes

log = logging.getLogger(__name__)
STAGES = ("capture", "infer", "app", "write", "latency")  # latency: from capture to written, per frame
POLL_SECONDS = 0.1  # how often a blocked stage looks whether the run is stopping
JOIN_SECONDS = 5.0


@dataclass
class Item:
    """A frame on its way through the pipeline."""

    index: int
    frame: np.ndarray
    timestamp_ms: int
    captured: float  # perf_counter() when read
    capture_s: float
    restored: np.ndarray | None = None
    infer_s: float = 0.0


END = None  # what a stage puts on its queue after its last item


class Pipeline:
    def __init__(self, source: FrameSource, engine: FittingEngine, app: App, sinks: Sequence[Sink], *,
                 max_frames: int | None = None, batch: int = 1, progress: bool = True,
                 stats_every: float | None = None, on_stats: Callable[[dict], None] | None = None) -> None:
        self.source, self.engine, self.app, self.sinks = source, engine, app, list(sinks)
        self.max_frames, self.batch, self.progress = max_frames, batch, progress
        # Live: at most one batch waits before inference and one before the app, the oldest dropped to make room,
        # so what is shown is at most about two batches old. Files read ahead and never drop.
        self.captured: queue.Queue = queue.Queue(maxsize=batch if source.live else 2 * batch)
        self.restored: queue.Queue = queue.Queue(maxsize=batch if source.live else 2 * batch)
        self.stopping = threading.Event()
        self.interrupted = False  # by Ctrl-C, SIGTERM or the window
        self.errors: list[BaseException] = []
        self.dropped = {"captured": 0, "restored": 0}  # each counter written by one thread only
        self.times = StageTimes(STAGES)
        self.stats_every, self.on_stats = stats_every, on_stats

    # -- queues: blocking operations that give up when the run stops
    def put(self, q: queue.Queue, item: Item | None) -> bool:
        while not self.stopping.is_set():
            try:
                q.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                pass
        return False

    def get(self, q: queue.Queue) -> Item | None:
        while not self.stopping.is_set():
            try:
                return q.get(timeout=POLL_SECONDS)
            except queue.Empty:
                pass
        return END

    def put_live(self, q: queue.Queue, name: str, item: Item) -> None:
        """Put without waiting: drop the oldest waiting frame when the queue is full."""
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    q.get_nowait()
                    self.dropped[name] += 1
                except queue.Empty:
                    pass

    def fail(self, err: BaseException) -> None:
        self.errors.append(err)
        self.stopping.set()

    # -- stage 1: capture
    def capture_loop(self, start: float) -> None:
        source, index = self.source, 0
        frames = iter(source)
        try:
            while not self.stopping.is_set():
                if not source.live and self.max_frames is not None and index >= self.max_frames:
                    break
                begin = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                now = time.perf_counter()
                # Live frames carry their capture time; file frames their place in the file.
                stamp = (now - start) * 1000 if source.live else index * 1000 / source.fps
                item = Item(index, frame, int(stamp), now, now - begin)
                if source.live:
                    self.put_live(self.captured, "captured", item)
                elif not self.put(self.captured, item):
                    break
                index += 1
        except BaseException as err:  # noqa: BLE001 - handed to the main thread, which raises it
            self.fail(err)
        self.put(self.captured, END)

    # -- stage 2: inference
    def next_batch(self, held: Item | None, ended: bool, wait: bool) -> tuple[list[Item], bool, Item | None]:
        """Up to `batch` frames of one size: (items, source ended, an item of another size kept for later).

        A file waits for a full batch; a live source takes only the frames already there (no added latency).
        Without `wait`, returns at once when no frame is waiting.
        """
        if ended:
            return ([held] if held is not None else []), True, None
        if held is not None:
            first = held
        elif wait:
            first = self.get(self.captured)
        else:
            try:
                first = self.captured.get_nowait()
            except queue.Empty:
                return [], False, None
        if first is END:
            return [], True, None
        items = [first]
        while len(items) < self.batch:
            if self.source.live:
                try:
                    item = self.captured.get_nowait()
                except queue.Empty:
                    break
            else:
                item = self.get(self.captured)
            if item is END:
                return items, True, None
            if item.frame.shape != first.frame.shape:
                return items, False, item
            items.append(item)
        return items, False, None

    def infer_loop(self) -> None:
        pending: deque = deque()
        held, ended = None, False
        try:
            while not self.stopping.is_set():
                if (not ended or held is not None) and len(pending) < self.engine.depth:
                    items, ended, held = self.next_batch(held, ended, wait=not pending)
                    if items:
                        frames = np.stack([item.frame for item in items])
                        pending.append((items, time.perf_counter(), self.engine.submit(frames)))
                        continue
                if not pending:
                    if ended and held is None:
                        break
                    continue
                items, submitted, batch = pending.popleft()
                restored = batch.result()
                seconds = time.perf_counter() - submitted
                for item, frame in zip(items, restored):
                    item.restored, item.infer_s = frame, seconds
                    if self.source.live:
                        self.put_live(self.restored, "restored", item)
                    elif not self.put(self.restored, item):
                        return
        except BaseException as err:  # noqa: BLE001 - handed to the main thread, which raises it
            self.fail(err)
        self.put(self.restored, END)

    # -- stage 3, on the calling thread: app and sinks
    def run(self) -> dict:
        """Run until the source ends, `max_frames` frames are out, Ctrl-C/SIGTERM, or an error (raised here).

        A stop leaves every output complete and playable; an error discards outputs that cannot be trusted.
        """
        from tqdm import tqdm

        main = threading.current_thread() is threading.main_thread()
        # Ctrl-C and SIGTERM only ask the stages to stop: nothing is cut off half-way through writing a frame.
        saved = [(sig, signal.signal(sig, self.on_signal)) for sig in (signal.SIGINT, signal.SIGTERM)] if main else []
        self.warm_up()
        start = time.perf_counter()
        workers = [threading.Thread(target=self.capture_loop, args=(start,), name="capture", daemon=True),
                   threading.Thread(target=self.infer_loop, name="inference", daemon=True)]
        for worker in workers:
            worker.start()
        total = self.source.frame_count
        if self.max_frames is not None:
            total = min(total, self.max_frames) if total else self.max_frames
        bar = tqdm(desc="frames", unit="f", total=total, disable=not self.progress, leave=False)
        frames, last_stamp, stats_written = 0, -1, start
        for sink in self.sinks:
            sink.start(lambda: self.report(frames, time.perf_counter() - start))
        try:
            while self.max_frames is None or frames < self.max_frames:
                item = self.get(self.restored)
                if item is END:
                    break
                begin = time.perf_counter()
                last_stamp = max(item.timestamp_ms, last_stamp + 1)  # video-mode apps need increasing stamps
                frame, record = self.app.process(item.frame, item.restored, last_stamp)
                shown = Shown(item.index, last_stamp, item.frame, frame, record)
                processed = time.perf_counter()
                for sink in self.sinks:
                    sink.write(shown)
                written = time.perf_counter()
                self.times.add((item.capture_s, item.infer_s, processed - begin, written - processed,
                                written - item.captured))
                frames += 1
                if self.on_stats and self.stats_every and written - stats_written >= self.stats_every:
                    self.on_stats(self.report(frames, written - start))
                    stats_written = written
                bar.update()
                dropped = sum(self.dropped.values())
                if dropped:
                    bar.set_postfix(dropped=dropped, refresh=False)
                if any(sink.stop_requested for sink in self.sinks):  # q or Esc in the window
                    self.interrupted = True
                    break
        except BaseException as err:
            self.errors.append(err)
        seconds = time.perf_counter() - start
        try:
            self.finish(workers, bar, complete=not self.errors)
        finally:
            for sig, handler in saved:
                signal.signal(sig, handler)
        if self.interrupted:
            log.info("stopped after %d frames", frames)
        expected = self.source.frame_count if self.max_frames is None else min(self.source.frame_count or 0,
                                                                                 self.max_frames)
        if expected and frames + self.source.skipped < expected and not (self.interrupted or self.errors):
            log.warning("%s %s ended at frame %d of the %d it announces (truncated or damaged?)", self.source.kind,
                        self.source.spec, frames + self.source.skipped, expected)
        if self.errors:
            raise self.errors[0]
        return self.report(frames, seconds)

    def warm_up(self) -> None:
        """Restore the source's first frame once, untimed, where the source has read it already: engines that
        compile (OpenVINO) or allocate (TensorRT) per frame shape do so here, not in the first frame's latency."""
        first = getattr(self.source, "first", None)
        if first is not None:
            self.engine.warm_up(np.repeat(first[None], self.batch, axis=0))

    def report(self, frames: int, seconds: float) -> dict:
        """The timing report so far (see `summarise`), with the run's counters."""
        report = summarise(self.times, frames, seconds)
        report.update(source=f"{self.source.kind}:{self.source.spec}", engine=self.engine.name, batch=self.batch,
                      dropped=sum(self.dropped.values()), dropped_before_inference=self.dropped["captured"],
                      dropped_before_app=self.dropped["restored"], skipped_corrupt=self.source.skipped,
                      reconnects=self.source.reopened, resized=self.engine.fit.resized, padded=self.engine.fit.padded,
                      interrupted=self.interrupted)
        return report

    def on_signal(self, signum: int, frame: object) -> None:
        self.interrupted = True
        self.stopping.set()

    def finish(self, workers: list[threading.Thread], bar, complete: bool) -> None:
        """Stop the stages and close everything, outputs first; a failure to close one part does not keep the
        others open, and is raised (after the run's own error, if any)."""
        self.stopping.set()
        self.source.stop()
        for worker in workers:
            worker.join(JOIN_SECONDS)
        bar.close()
        failed = not complete
        for sink in self.sinks:  # one output that fails discards the others
            try:
                sink.close(complete=not failed)
            except Exception as err:  # noqa: BLE001 - kept, raised once everything is closed
                self.errors.append(err)
                failed = True
        closers = [self.app.close] + ([self.source.close] if not workers[0].is_alive() else [])
        for close in closers:  # a camera stuck in a read is left to the process exit
            try:
                close()
            except Exception as err:  # noqa: BLE001 - kept, raised once everything is closed
                self.errors.append(err)


def run(source: FrameSource, engine: FittingEngine, app: App, sinks: Sequence[Sink], *,
        max_frames: int | None = None, progress: bool = True, batch: int = 1, stats_every: float | None = None,
        on_stats: Callable[[dict], None] | None = None) -> dict:
    """Restore the frames of `source` through `engine` into `app` and `sinks`; return the timing report, also
    handed to `on_stats` every `stats_every` seconds while the run goes on."""
    return Pipeline(source, engine, app, sinks, max_frames=max_frames, batch=batch, progress=progress,
                    stats_every=stats_every, on_stats=on_stats).run()


def summarise(times: StageTimes, frames: int, seconds: float) -> dict:
    """Per-stage p50/p95 (over the latest frames) and mean/max in milliseconds, and the overall frame rate."""
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2) if seconds else 0.0,
            "stages": times.summary(), "percentiles_over": min(times.count, times.window)}


def format_report(report: dict) -> str:
    """The timing report as a small table."""
    lines = [f"{report['frames']} frames in {report['seconds']:.2f} s = {report['fps']:.2f} frames/s "
             f"({report['engine']}, batch {report['batch']}); dropped {report['dropped']}, "
             f"skipped corrupt {report['skipped_corrupt']}"]
    if report.get("reconnects"):
        lines.append(f"reconnected {report['reconnects']} times")
    if report.get("resized") or report.get("padded"):
        lines.append(f"outside the bundle's shapes: {report['resized']} frames resized, {report['padded']} padded")
    lines.append(f"{'stage':<8} {'p50 ms':>9} {'p95 ms':>9}")
    for stage, figures in report["stages"].items():
        lines.append(f"{stage:<8} {figures['p50_ms']:>9.2f} {figures['p95_ms']:>9.2f}")
    return "\n".join(lines)
