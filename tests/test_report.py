"""One HTML report per result: `b2b-eval deblur|handpose --report` and `b2b-eval report` (what `make demo` writes)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

from helpers import B2B_BENCH, B2B_EVAL, B2B_RUN, assert_one_line_error, write_frame_bundle, write_video

PAIRS = "synthetic:defocus?sharp=deadleaves:2&size=48&count=3"


def links(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_eval_deblur_writes_one_page_with_relative_links(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle", invert=False)
    result = subprocess.run([B2B_EVAL, "deblur", "--bundle", bundle, "--pairs", PAIRS, "--report", tmp_path / "report"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "report" / "index.html").read_text()
    assert "mean of 3" in page and "PSNR / SSIM on 3 pairs" in page and "from b2b-eval deblur --bundle" in page
    assert len(re.findall(r"<figure>", page)) == 3  # a comparison grid per pair, though --grid was not given
    for link in links(page):
        assert not link.startswith(("/", "file:", "http")) and (tmp_path / "report" / link).is_file(), link


def test_a_report_of_everything_renders_in_a_real_browser(tmp_path, browser):
    from test_core import tiny

    from blur2blur.train.deblurrer import train_deblurrer

    train_deblurrer(tiny(tmp_path, "run", steps=4, eval_every=2, log_every=2))
    bundle = write_frame_bundle(tmp_path / "bundle")
    write_video(tmp_path / "in.mp4", frames=12)
    subprocess.run([B2B_RUN, "--bundle", bundle, "--video", tmp_path / "in.mp4", "--headless", "--side-by-side",
                    "--output", tmp_path / "out.mp4", "--stats", tmp_path / "timing.json"], check=True,
                   capture_output=True)
    subprocess.run([B2B_BENCH, "--bundle", bundle, "--sizes", "64x48", "--backends", "onnxruntime", "--precisions",
                    "fp32", "--frames", "3", "--json", tmp_path / "bench.json"], check=True, capture_output=True)
    subprocess.run([B2B_EVAL, "deblur", "--bundle", bundle, "--pairs", PAIRS, "--grid", tmp_path / "grids", "--json",
                    tmp_path / "eval.json"], check=True, capture_output=True)
    result = subprocess.run([B2B_EVAL, "report", "--out", tmp_path / "made", "--eval", tmp_path / "eval.json",
                             "--grids", tmp_path / "grids", "--checkpoint", tmp_path / "run" / "last.pt",
                             "--stats", tmp_path / "timing.json", "--bench", tmp_path / "bench.json",
                             "--video", tmp_path / "out.mp4"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    moved = tmp_path / "elsewhere" / "copied"
    shutil.copytree(tmp_path / "made", moved)  # relative links: the folder works anywhere
    shutil.rmtree(tmp_path / "made")

    browser.get((moved / "index.html").as_uri())
    headings = [h.text for h in browser.find_elements("tag name", "h2")]
    assert headings[:2] == ["Restoration makes these frames worse", "PSNR / SSIM on 3 pairs"]  # the inverting bundle
    assert {"Comparison grids", "b2b-run timing report", "b2b-bench: what a frame costs",
            "The output video"} <= set(headings)
    assert any(h.startswith("Training curves of") for h in headings)
    broken = browser.execute_script("return Array.from(document.images).filter(i => !i.complete || !i.naturalWidth)"
                                    ".map(i => i.src)")
    assert broken == [] and len(browser.find_elements("tag name", "img")) == 4  # 3 grids, the curves
    video = browser.find_element("tag name", "video")
    browser.execute_script("arguments[0].play()", video)
    for _ in range(100):
        if browser.execute_script("return arguments[0].readyState >= 2 && arguments[0].duration > 0", video):
            break
        time.sleep(0.1)
    assert browser.execute_script("return arguments[0].error === null && arguments[0].videoWidth", video) == 128
    assert "frames/s" in browser.find_element("tag name", "pre").text  # the timing report
    assert browser.find_elements("css selector", "table td")  # the tables


def test_report_bad_input_is_one_line(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    assert_one_line_error(subprocess.run([B2B_EVAL, "report", "--out", tmp_path / "r", "--eval", tmp_path / "bad.json"],
                                         capture_output=True, text=True), "--eval")
    assert_one_line_error(subprocess.run([B2B_EVAL, "report", "--out", tmp_path / "r", "--video", tmp_path / "no.mp4"],
                                         capture_output=True, text=True), "--video")
