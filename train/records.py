"""What a run leaves besides checkpoints: a metrics log (JSON lines) and a plot of its curves."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from blur2blur.files.atomic import write_atomic


class MetricsLog:
    """`metrics.jsonl`: one JSON object per line, each with its `step`. Opening it for a resumed run drops the
    lines after the step the run resumes from: the steps it will do again."""

    def __init__(self, path: str | Path, resume_from: int | None = None) -> None:
        self.path = Path(path)
        if resume_from is None:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            kept = [line for line in self.read() if line["step"] <= resume_from]
            write_atomic(self.path, "".join(json.dumps(line) + "\n" for line in kept).encode())

    def write(self, step: int, values: dict[str, float]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")

    def read(self) -> list[dict]:
        lines = []
        for text in self.path.read_text().splitlines() if self.path.exists() else []:
            try:
                lines.append(json.loads(text))
            except ValueError:  # a line cut short by a crash
                continue
        return [line for line in lines if isinstance(line, dict) and "step" in line]


def plot_curves(log: MetricsLog, path: str | Path, title: str) -> list[str]:
    """One panel per figure in the log (training losses, held-out metrics) against the step, as a PNG; returns
    the panels' names. A figure `x_input` (the untouched input's score) is drawn dashed in the panel of `x`."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    lines = log.read()
    keys = [k for k in dict.fromkeys(k for line in lines for k in line) if k not in ("step", "elapsed_s")]
    panels = [k for k in keys if not (k.endswith("_input") and k[:-len("_input")] in keys)]
    if not panels:
        return []
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3 * rows), squeeze=False)
    for ax, key in zip(axes.flat, panels):
        for name, style in ((key, "-"), (f"{key}_input", "--")):
            points = [(line["step"], line[name]) for line in lines if isinstance(line.get(name), (int, float))]
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, style, marker="o" if len(points) < 30 else None, markersize=3,
                        label="input" if name != key else None)
        if f"{key}_input" in keys:
            ax.legend(fontsize=8)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=80)
    plt.close(fig)
    write_atomic(path, image.getvalue())
    return panels
