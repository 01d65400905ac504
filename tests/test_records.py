"""Run records: the metrics log across a resume, the curves plot, sample grids."""

import cv2
import numpy as np

from blur2blur.data.grid import grid, write_grid
from blur2blur.train.records import MetricsLog, plot_curves


def test_resuming_drops_log_lines_after_the_checkpoint(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in (0, 5, 10, 15):
        log.write(step, {"loss": float(step)})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 20, "lo')  # cut short by a crash
    resumed = MetricsLog(tmp_path / "metrics.jsonl", resume_from=10)
    assert [line["step"] for line in resumed.read()] == [0, 5, 10]
    assert [line["step"] for line in MetricsLog(tmp_path / "metrics.jsonl").read()] == []  # a new run starts afresh


def test_curves_put_each_figure_in_a_panel_with_its_input_reference(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in range(0, 50, 10):
        log.write(step, {"psnr": 20.0 + step / 10, "lr": 1e-3})
        log.write(step, {"val_psnr": 21.0 + step / 10, "val_psnr_input": 20.0})
    assert plot_curves(log, tmp_path / "curves.png", "test") == ["psnr", "lr", "val_psnr"]
    image = cv2.imread(str(tmp_path / "curves.png"))
    assert image is not None and image.shape[1] > 2 * image.shape[0]  # the three panels side by side


def test_grid_lays_rows_out_with_gaps(tmp_path):
    a, b = np.zeros((10, 12, 3), np.uint8), np.full((6, 8, 3), 100, np.uint8)
    canvas = grid([[a, b], [b]], gap=2)
    assert canvas.shape == (10 + 2 + 6, 12 + 2 + 8, 3)
    assert canvas[0, 0, 0] == 0 and canvas[0, 14, 0] == 100 and canvas[12, 0, 0] == 100 and canvas[11, 0, 0] == 255
    write_grid(tmp_path / "samples" / "g.png", [[a, b]])
    assert cv2.imread(str(tmp_path / "samples" / "g.png")).shape == (10, 12 + 4 + 8, 3)  # the default gap is 4
