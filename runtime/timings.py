"""Per-stage timings in bounded memory, for runs that last weeks: exact counts, means and maxima, and
percentiles over a window of the latest frames."""

from __future__ import annotations

import numpy as np

WINDOW = 4096  # frames whose times give the percentiles: about two minutes at 30 frames/s


class StageTimes:
    """Seconds per frame of each stage; memory stays the same however long the run."""

    def __init__(self, stages: tuple[str, ...], window: int = WINDOW) -> None:
        self.stages, self.window = stages, window
        self.recent = np.zeros((len(stages), window))
        self.count = 0
        self.total = np.zeros(len(stages))
        self.peak = np.zeros(len(stages))

    def add(self, seconds: tuple[float, ...]) -> None:
        """One frame's time in each stage, in the order of `stages`."""
        values = np.asarray(seconds, dtype=float)
        self.recent[:, self.count % self.window] = values
        self.total += values
        np.maximum(self.peak, values, out=self.peak)
        self.count += 1

    def summary(self) -> dict[str, dict[str, float]]:
        """Per stage, in milliseconds: p50 and p95 over the latest `window` frames, mean and max over all."""
        kept = self.recent[:, : min(self.count, self.window)] * 1000.0
        figures = {}
        for row, stage in enumerate(self.stages):
            values = kept[row] if self.count else np.zeros(1)
            figures[stage] = {"p50_ms": round(float(np.percentile(values, 50)), 3),
                              "p95_ms": round(float(np.percentile(values, 95)), 3),
                              "mean_ms": round(float(self.total[row] * 1000.0 / max(self.count, 1)), 3),
                              "max_ms": round(float(self.peak[row] * 1000.0), 3)}
        return figures
