"""Nothing lost: full disks, two writers at once, killed processes, tampered bundles, unsafe checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import (
    B2B_BENCH,
    B2B_RUN,
    assert_one_line_error,
    fill,
    noisy_video,
    read_video,
    write_frame_bundle,
    write_video,
)

from blur2blur.errors import UserError
from blur2blur.files.atomic import temporary
from blur2blur.files.locks import Lock, beside

BIN = Path(sys.executable).parent


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)


def assert_failed_with(result: subprocess.CompletedProcess, match: str) -> None:
    """A run that failed after it started (its progress lines before): exactly one error line, naming `match`."""
    assert result.returncode != 0, result.stdout
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error:") and match in errors[0], result.stderr


# ---------------------------------------------------------------- outputs under a full disk


def test_a_full_disk_fails_the_run_and_keeps_the_previous_video_and_records(tmp_path, small_disk):
    bundle = write_frame_bundle(tmp_path / "bundle")
    noisy_video(tmp_path / "in.mp4", 60)
    old = small_disk / "out.mp4"
    write_video(old, frames=4)
    (small_disk / "hands.jsonl").write_text('{"old": true}\n')
    fill(small_disk, leave=24 * 1024)
    result = run(B2B_RUN, "--bundle", bundle, "--video", tmp_path / "in.mp4", "--output", old, "--headless", "--force")
    assert_failed_with(result, "did not write completely")
    assert "previous file is kept" in result.stderr
    assert len(read_video(old)) == 4  # the old video, intact
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "hands.jsonl", "out.mp4"]

    result = run(B2B_RUN, "--bundle", bundle, "--video", tmp_path / "in.mp4", "--output", old, "--headless",
                 "--app", "handpose", "--records", small_disk / "hands.jsonl", "--force")
    assert_failed_with(result, "the previous file is kept")
    assert (small_disk / "hands.jsonl").read_text() == '{"old": true}\n'
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "hands.jsonl", "out.mp4"]


def test_a_full_disk_while_saving_a_checkpoint_says_so_and_keeps_the_previous_one(small_disk):
    from blur2blur.models import create_model
    from blur2blur.models.checkpoint import read_checkpoint, save_checkpoint

    model = create_model("nafnet-tiny")
    path = small_disk / "last.pt"
    save_checkpoint(path, model, "deblurrer", meta={"step": 1})
    fill(small_disk, leave=16 * 1024)
    with pytest.raises(UserError, match="no space left on the disk\\); the previous one is kept: free some space"):
        save_checkpoint(path, model, "deblurrer", meta={"step": 2})
    assert not any(small_disk.glob(".*tmp*")) and read_checkpoint(path)["meta"]["step"] == 1


def test_a_full_disk_in_synth_is_one_line_with_the_remedy(small_disk):
    fill(small_disk, leave=8 * 1024)
    result = run(BIN / "b2b-train", "synth", "--domain", "known", "--sharp", "deadleaves:2", "--count", "40",
                 "--size", "64", "--out", small_disk / "pairs")
    assert_failed_with(result, "00000.png: No space left on device (the disk is full: free some space")


# ---------------------------------------------------------------- one writer at a time


def test_a_second_run_to_the_same_output_is_refused_naming_the_holder(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    write_video(tmp_path / "in.mp4", frames=3)
    with Lock(beside(tmp_path / "out.mp4"), "held"):
        result = run(B2B_RUN, "--bundle", bundle, "--video", tmp_path / "in.mp4", "--output", tmp_path / "out.mp4",
                     "--headless")
    assert_one_line_error(result, f"--output {tmp_path / 'out.mp4'} is in use by another process (pid {os.getpid()})")
    assert not (tmp_path / "out.mp4").exists()
    result = run(B2B_RUN, "--bundle", bundle, "--video", tmp_path / "in.mp4", "--output", tmp_path / "out.mp4",
                 "--headless")
    assert result.returncode == 0, result.stderr
    assert len(read_video(tmp_path / "out.mp4")) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "in.mp4", "out.mp4"]  # no lock file left


def test_a_lock_dies_with_its_holder_even_on_kill_9(tmp_path):
    target = tmp_path / "runs" / "x"
    holder = subprocess.Popen([sys.executable, "-c", f"from blur2blur.files.locks import Lock; import time; "
                               f"Lock({str(target / '.lock')!r}, 'x').acquire(); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match=f"pid {holder.pid}"):
        Lock(target / ".lock", "--out runs/x").acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with Lock(target / ".lock", "--out runs/x"):
        pass


def test_two_trainings_cannot_share_a_run_folder(tmp_path):
    from test_core import tiny

    from blur2blur.train.deblurrer import train_deblurrer

    out = tmp_path / "run"
    out.mkdir()
    with Lock(out / ".lock", "held"):
        with pytest.raises(UserError, match=f"--out {out} is in use by another process \\(pid {os.getpid()}\\)"):
            train_deblurrer(tiny(tmp_path, "run", steps=2))
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing of the refused run
    train_deblurrer(tiny(tmp_path, "run", steps=2, eval_every=2))
    with Lock(out / ".lock", "held"):  # nor may a second --resume join a running one
        with pytest.raises(UserError, match="is in use by another process"):
            train_deblurrer(tiny(tmp_path, "run", steps=4, resume=True))


def test_two_exports_to_one_bundle_cannot_both_succeed(tmp_path):
    from blur2blur.export.onnx_export import export_bundle

    with Lock(beside(tmp_path / "bundle"), "held"):
        with pytest.raises(UserError, match="--out .*bundle is in use by another process"):
            export_bundle("starter", tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_temporary_names_are_unique_per_process(tmp_path):
    other = run(sys.executable, "-c",
                f"from blur2blur.files.atomic import temporary; print(temporary({str(tmp_path / 'o.mp4')!r}))")
    assert other.stdout.strip() != str(temporary(tmp_path / "o.mp4"))
    assert temporary(tmp_path / "o.mp4").suffix == ".mp4"  # the container stays the one asked for


# ---------------------------------------------------------------- a user's files are never deleted


def test_synth_overwrite_never_deletes_a_users_own_pairs(tmp_path):
    from blur2blur.data.blur.write import synthesize

    for side in ("blur", "sharp"):
        (tmp_path / "mine" / side).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "mine" / side / "00000.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(UserError, match="did not write .*left as they are"):
        synthesize("known", [np.zeros((64, 64, 3), np.uint8)], tmp_path / "mine", count=2, size=16, overwrite=True)
    assert all((tmp_path / "mine" / side / "00000.png").is_file() for side in ("blur", "sharp"))


def test_synth_video_into_a_path_under_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = run(BIN / "b2b-train", "synth", "--domain", "known", "--sharp", "deadleaves:1", "--video", "3",
                 "--frame-size", "32x32", "--out", tmp_path / "afile" / "clip.mp4")
    assert_one_line_error(result, "a file is in the way")


# ---------------------------------------------------------------- unsafe or foreign checkpoints


def test_a_malicious_checkpoint_is_refused_without_torchs_unsafe_advice(tmp_path):
    marker = tmp_path / "PWNED"
    payload = (f"import os, torch\nclass P:\n    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
               f"torch.save({{'state_dict': P()}}, {str(tmp_path / 'evil.pt')!r})\n")
    subprocess.run([sys.executable, "-c", payload], check=True)
    result = run(BIN / "b2b-export", "--deblurrer", tmp_path / "evil.pt", "--out", tmp_path / "b")
    assert_one_line_error(result, "cannot be loaded safely, and will not be")
    assert "weights_only" not in result.stderr and not marker.exists()


def test_an_onnx_file_given_as_a_checkpoint_says_what_it_is(tmp_path):
    write_frame_bundle(tmp_path / "bundle")
    result = run(BIN / "b2b-export", "--deblurrer", tmp_path / "bundle" / "model.onnx", "--out", tmp_path / "b")
    assert_one_line_error(result, "is an ONNX graph, not a checkpoint")
    assert "weights_only" not in result.stderr


def test_a_truncated_last_pt_says_how_to_go_on(tmp_path):
    from test_core import tiny

    from blur2blur.train.deblurrer import train_deblurrer

    train_deblurrer(tiny(tmp_path, "run", steps=2, eval_every=2))
    last = tmp_path / "run" / "last.pt"
    last.write_bytes(last.read_bytes()[:5000])
    for resume in (True, False):
        with pytest.raises(UserError, match=f"mv {last} {last}.bad.*--init {last.with_name('best.pt')}"):
            train_deblurrer(tiny(tmp_path, "run", steps=4, resume=resume))


# ---------------------------------------------------------------- bundles are checked when opened


def test_a_bundle_changed_after_export_is_refused_unless_no_verify(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    write_video(tmp_path / "in.mp4", frames=3)
    graph = bytearray((bundle / "model.onnx").read_bytes())
    graph[-1] ^= 0x01  # the white constant 255 becomes 254: it still runs, and gives other frames
    (bundle / "model.onnx").write_bytes(bytes(graph))
    args = ["--bundle", bundle, "--video", tmp_path / "in.mp4", "--headless"]
    assert_one_line_error(run(B2B_RUN, *args), "model.onnx is modified (changed after export): export it again, or "
                                                "pass --no-verify")
    assert run(B2B_RUN, *args, "--no-verify").returncode == 0
    assert_one_line_error(run(B2B_BENCH, "--bundle", bundle, "--sizes", "64x48", "--backends", "onnxruntime"),
                          "model.onnx is modified")
    assert_one_line_error(run(BIN / "b2b-eval", "deblur", "--bundle", bundle, "--pairs", "synthetic:known?"
                              "sharp=deadleaves:2&count=2&size=48"), "model.onnx is modified")


def test_a_truncated_graph_under_no_verify_is_one_line(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    write_video(tmp_path / "in.mp4", frames=3)
    (bundle / "model.onnx").write_bytes((bundle / "model.onnx").read_bytes()[:40])
    result = run(B2B_RUN, "--bundle", bundle, "--video", tmp_path / "in.mp4", "--headless", "--no-verify")
    assert_one_line_error(result, "cannot load it")  # the first backend tried (OpenVINO or ONNX Runtime) says so
    assert "the file is damaged or incomplete: export the bundle again" in result.stderr


@pytest.mark.parametrize("change, named", [
    (lambda meta: [meta], "holds a list"),
    (lambda meta: {**meta, "artefacts": ["model.onnx"]}, "lists no artefacts"),
    (lambda meta: {**meta, "artefacts": {"model.onnx": {}}}, "artefacts.model.onnx has no sha256"),
    (lambda meta: {**meta, "input": "frames"}, "input.name is missing"),
    (lambda meta: {**meta, "shapes": {"min": [1, 8, 8, 3], "opt": [1, 8, 8, 3], "max": ["1", 8, 8, 3]}},
     "shapes.max is not four positive integers"),
    (lambda meta: {**meta, "format": "other/2"}, "has format 'other/2'"),
])
def test_a_meta_json_of_the_wrong_structure_is_one_line_before_any_frame(tmp_path, change, named):
    bundle = write_frame_bundle(tmp_path / "bundle")
    write_video(tmp_path / "in.mp4", frames=3)
    meta = json.loads((bundle / "meta.json").read_text())
    (bundle / "meta.json").write_text(json.dumps(change(meta)))
    result = run(B2B_RUN, "--bundle", bundle, "--video", tmp_path / "in.mp4", "--output", tmp_path / "o.mp4")
    assert_one_line_error(result, named)
    assert not (tmp_path / "o.mp4").exists()


def test_b2b_bench_fails_when_nothing_could_be_timed(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    result = run(B2B_BENCH, "--bundle", bundle, "--sizes", "64x48", "--precisions", "fp16", "--backends",
                 "onnxruntime")
    assert result.returncode != 0
    assert "nothing could be timed" in result.stderr and "has no fp16 graph" in result.stdout


# ---------------------------------------------------------------- leftovers


def test_what_killed_writers_left_is_cleaned_by_the_next_writer(tmp_path):
    from test_core import tiny

    from blur2blur.train.deblurrer import train_deblurrer

    bundle = write_frame_bundle(tmp_path / "bundle")
    write_video(tmp_path / "in.mp4", frames=3)
    stale_video = tmp_path / ".out.99999999.tmp.mp4"
    stale_video.write_bytes(b"half a video")
    result = run(B2B_RUN, "--bundle", bundle, "--video", tmp_path / "in.mp4", "--output", tmp_path / "out.mp4",
                 "--headless")
    assert result.returncode == 0 and not stale_video.exists()
    (tmp_path / "run").mkdir()
    stale_checkpoint = tmp_path / "run" / ".last.99999999.tmp.pt"
    stale_checkpoint.write_bytes(b"half a checkpoint")
    train_deblurrer(tiny(tmp_path, "run", steps=2, eval_every=2))
    assert not stale_checkpoint.exists()


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    result = run(BIN / "b2b-train", "converter", "--blurry", "synthetic:defocus?sharp=deadleaves:2&size=64",
                 "--sharp", "synthetic:defocus?sharp=deadleaves:2&size=64", "--known", "synthetic:known",
                 "--deblurrer", "starter", "--crop", "32", "--out", tmp_path / "runs" / "conv")
    assert_failed_with(result, "--crop 32: the critic patchgan-tiny-nonorm needs crops of at least 96 px")
    assert not (tmp_path / "runs" / "conv").exists()


def test_a_video_that_ends_early_says_where(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    noisy_video(tmp_path / "in.mp4", 40)
    data = (tmp_path / "in.mp4").read_bytes()
    moov = data.find(b"moov")
    assert moov > 0, "mp4v files from OpenCV keep their index at the end"
    cut = bytearray(data)
    mdat = data.find(b"mdat") + 4
    cut[mdat + (moov - mdat) // 2: moov - 8] = b"\0" * (moov - 8 - mdat - (moov - mdat) // 2)  # frames lost mid-file
    (tmp_path / "cut.mp4").write_bytes(bytes(cut))
    result = run(B2B_RUN, "--bundle", bundle, "--video", tmp_path / "cut.mp4", "--headless")
    assert result.returncode == 0, result.stderr
    assert "ended at frame" in result.stderr and "of the 40 it announces" in result.stderr


def test_images_given_a_file_says_it_is_a_file(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    write_video(tmp_path / "in.mp4", frames=2)
    assert_one_line_error(run(B2B_RUN, "--bundle", bundle, "--images", tmp_path / "in.mp4"),
                          f"--images {tmp_path / 'in.mp4'}: a file, not a folder of images (a video? open it as one)")


def test_a_crop_larger_than_the_pairs_is_said(tmp_path, caplog):
    from test_core import tiny

    from blur2blur.train.deblurrer import train_deblurrer

    with caplog.at_level("WARNING"):
        train_deblurrer(tiny(tmp_path, "run", steps=1, eval_every=1, crop=64,
                             pairs="synthetic:known?sharp=deadleaves:3&size=48"))
    assert "--crop 64 is larger than the pairs (the first is 48x48)" in caplog.text


# ---------------------------------------------------------------- weeks of uptime


def test_stage_times_hold_exact_counts_and_means_in_bounded_memory():
    from blur2blur.runtime.timings import StageTimes

    times = StageTimes(("a", "b"), window=100)
    size = times.recent.nbytes
    for i in range(10_000):
        times.add((i / 1000.0, 0.002))
    summary = times.summary()
    assert times.recent.nbytes == size and times.count == 10_000
    assert summary["a"]["mean_ms"] == pytest.approx(4999.5)  # over all 10 000 frames
    assert summary["a"]["p50_ms"] == pytest.approx(9949.5)  # over the latest 100 only
    assert summary["a"]["max_ms"] == pytest.approx(9999.0) and summary["b"]["p95_ms"] == pytest.approx(2.0)


def test_stats_every_writes_the_figures_while_the_run_goes_on(tmp_path):
    bundle = write_frame_bundle(tmp_path / "bundle")
    write_video(tmp_path / "in.mp4", frames=5)
    stats = tmp_path / "stats.json"
    live = subprocess.Popen([B2B_RUN, "--bundle", str(bundle), "--video", str(tmp_path / "in.mp4"), "--loop",
                             "--headless", "--stats", str(stats), "--stats-every", "0.2"],
                            stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 3 and time.monotonic() < deadline:
        if stats.exists():
            report = json.loads(stats.read_text())
            if not seen or report["frames"] > seen[-1]:
                assert report["running"] is True
                seen.append(report["frames"])
        time.sleep(0.05)
    live.send_signal(signal.SIGINT)
    assert live.wait(timeout=30) == 0, live.stderr.read()
    final = json.loads(stats.read_text())
    assert len(seen) == 3 and final["running"] is False and final["frames"] >= seen[-1]
    assert final["dropped"] == 0 and final["percentiles_over"] == min(final["frames"], 4096)
