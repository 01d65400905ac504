"""The output rule (outputs.py, README "Nothing lost"): no output replaces an input or a file the command did not
write; report and grid folders belong to their command, are replaced whole and checked complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (
    B2B_EVAL,
    B2B_RUN,
    assert_one_line_error,
    fill,
    noisy_video,
    pair_folder,
    read_video,
    write_frame_bundle,
    write_video,
)

from blur2blur.errors import UserError
from blur2blur.evaluate.report import build_report, markdown_to_html, table_cell
from blur2blur.files.outputs import MARKER, check_outputs, owned_folder

BIN = Path(sys.executable).parent


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300)


def digest(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (links as their target's name), to compare before and after."""
    return {str(p.relative_to(folder)): (os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


@pytest.fixture
def clip_and_bundle(tmp_path):
    write_video(tmp_path / "in.mp4", frames=12)
    return tmp_path / "in.mp4", write_frame_bundle(tmp_path / "bundle")


@pytest.mark.parametrize("option", ["--output", "--stats", "--records"])
def test_b2b_run_never_writes_over_its_input_video(tmp_path, clip_and_bundle, option):
    clip, bundle = clip_and_bundle
    before = clip.read_bytes()
    result = run(B2B_RUN, "--bundle", bundle, "--video", clip, "--headless", "--max-frames", 3, option, clip,
                 "--force", *(["--app", "handpose"] if option == "--records" else []))
    assert_one_line_error(result, f"{option} {clip}: is --video {clip}, which this command reads")
    assert clip.read_bytes() == before


def test_b2b_run_never_writes_into_its_bundle(tmp_path, clip_and_bundle):
    clip, bundle = clip_and_bundle
    before = digest(bundle)
    for option, target in (("--stats", bundle / "meta.json"), ("--output", bundle / "frames")):
        result = run(B2B_RUN, "--bundle", bundle, "--video", clip, "--headless", option, target, "--force")
        assert_one_line_error(result, f"{option} {target}: is inside --bundle {bundle}")
    assert digest(bundle) == before


def test_an_existing_output_file_is_replaced_only_with_force(tmp_path, clip_and_bundle):
    clip, bundle = clip_and_bundle
    stats, video = tmp_path / "timing.json", tmp_path / "out.mp4"
    stats.write_text("my notes\n")
    write_video(video, frames=3)
    for option, target in (("--stats", stats), ("--output", video)):
        result = run(B2B_RUN, "--bundle", bundle, "--video", clip, "--headless", option, target)
        assert_one_line_error(result, f"{option} {target}: exists; pass --force to replace it")
    assert stats.read_text() == "my notes\n" and len(read_video(video)) == 3
    result = run(B2B_RUN, "--bundle", bundle, "--video", clip, "--headless", "--stats", stats, "--output", video,
                 "--force", "--backend", "onnxruntime")
    assert result.returncode == 0, result.stderr
    assert json.loads(stats.read_text())["frames"] == 12 and len(read_video(video)) == 12


def test_two_outputs_on_one_file_are_refused(tmp_path, clip_and_bundle):
    clip, bundle = clip_and_bundle
    result = run(B2B_RUN, "--bundle", bundle, "--video", clip, "--headless", "--stats", tmp_path / "x.json",
                 "--records", tmp_path / "x.json", "--app", "handpose")
    assert_one_line_error(result, f"--records {tmp_path / 'x.json'}: is also --stats")


def test_a_run_that_cannot_start_leaves_no_lock_or_file(tmp_path, clip_and_bundle):
    clip, bundle = clip_and_bundle
    result = run(B2B_RUN, "--bundle", bundle, "--video", clip, "--headless", "--output", tmp_path / "out.mp4",
                 "--app", "handpose", "--hand-model", tmp_path / "missing.task")
    assert result.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "in.mp4"]


def test_b2b_eval_never_writes_over_a_pair_image(tmp_path):
    pairs = pair_folder(tmp_path / "pairs", count=4, bad_files=False)
    target = pairs / "sharp" / "000.png"
    before = digest(pairs)
    bundle = write_frame_bundle(tmp_path / "bundle", invert=False)
    for option, value in (("--json", target), ("--grid", pairs / "sharp"), ("--report", tmp_path)):
        result = run(B2B_EVAL, "deblur", "--bundle", bundle, "--pairs", pairs, option, value, "--force")
        assert result.returncode != 0 and "which this command reads" in result.stderr, result.stderr
    assert digest(pairs) == before


def test_report_and_grid_folders_of_the_users_own_are_refused_before_any_evaluation(tmp_path):
    pairs = pair_folder(tmp_path / "pairs", count=4, bad_files=False)
    bundle = write_frame_bundle(tmp_path / "bundle", invert=False)
    mine = tmp_path / "site"
    (mine / "files").mkdir(parents=True)
    (mine / "index.html").write_text("my home page")
    (mine / "files" / "000.png").write_text("my picture")
    before = digest(mine)
    for option in ("--report", "--grid"):
        result = run(B2B_EVAL, "deblur", "--bundle", bundle, "--pairs", pairs, option, mine)
        assert_one_line_error(result, f"{option} {mine}: holds files that a blur2blur")
        assert "PSNR" not in result.stdout  # refused before evaluating
    assert digest(mine) == before


def test_an_earlier_report_is_replaced_whole_without_following_links(tmp_path):
    pairs = pair_folder(tmp_path / "pairs", count=4, bad_files=False)
    bundle = write_frame_bundle(tmp_path / "bundle", invert=False)
    report, grids, outside = tmp_path / "report", tmp_path / "grids", tmp_path / "precious.png"
    outside.write_text("outside the report")
    for round_ in range(2):
        result = run(B2B_EVAL, "deblur", "--bundle", bundle, "--pairs", pairs, "--report", report, "--grid", grids,
                     "--json", tmp_path / "eval.json", "--force")
        assert result.returncode == 0, result.stderr
        assert f"wrote 4 grids to {grids}" in result.stdout
        if round_ == 0:  # links planted in both folders, where the next run writes files of those names
            for folder in (report / "files", grids):
                name = next(p.name for p in folder.glob("*.png"))
                (folder / name).unlink()
                (folder / name).symlink_to(outside)
            (report / "files" / "stale.png").write_text("left by an earlier report")
    assert outside.read_text() == "outside the report"
    assert not any(p.is_symlink() for p in [*report.rglob("*"), *grids.rglob("*")])
    assert not (report / "files" / "stale.png").exists()
    assert (report / MARKER).read_text().strip() == "report" and (grids / MARKER).read_text().strip() == "grids"
    assert not list(tmp_path.glob(".*partial*")) and not list(tmp_path.glob(".*old*"))


def test_a_report_alone_does_not_name_its_temporary_grids(tmp_path):
    pairs = pair_folder(tmp_path / "pairs", count=3, bad_files=False)
    bundle = write_frame_bundle(tmp_path / "bundle", invert=False)
    result = run(B2B_EVAL, "deblur", "--bundle", bundle, "--pairs", pairs, "--report", tmp_path / "report")
    assert result.returncode == 0, result.stderr
    assert "grids to" not in result.stdout and len(list((tmp_path / "report" / "files").glob("*.png"))) == 3


def test_a_report_on_a_full_disk_fails_and_keeps_the_previous_report(tmp_path, small_disk):
    clip = tmp_path / "restored.mp4"
    noisy_video(clip, 120, (160, 120))
    report = small_disk / "report"
    write_video(tmp_path / "small.mp4", frames=5)
    build_report(report, "test", video=tmp_path / "small.mp4")
    before = digest(report)
    fill(small_disk, leave=64 * 1024)
    with pytest.raises(UserError, match="did not write completely|could not be written") as err:
        build_report(report, "test", video=clip)
    assert "the previous report is kept" in str(err.value)
    assert digest(report) == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "report"]


def test_b2b_eval_report_names_a_json_file_of_the_wrong_kind(tmp_path):
    (tmp_path / "empty.json").write_text("{}")
    (tmp_path / "list.json").write_text("[1, 2]")
    for option, name in (("--eval", "empty.json"), ("--eval", "list.json"), ("--stats", "empty.json"),
                         ("--bench", "empty.json")):
        result = run(B2B_EVAL, "report", "--out", tmp_path / "report", option, tmp_path / name)
        assert_one_line_error(result, f"{tmp_path / name}: is not a")
    assert not (tmp_path / "report").exists()


def test_table_cells_keep_pipes_and_newlines_of_names():
    html = markdown_to_html(f"| image | x |\n|---|---|\n| {table_cell('a|b' + chr(10) + 'c')} | 1.00 |")
    assert "<td>a|b c</td><td>1.00</td>" in html


def test_the_rule_in_one_place(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"x")
    (tmp_path / "link").symlink_to(folder)
    with pytest.raises(UserError, match="is inside --sharp"):  # through a link, and a spec's query
        check_outputs({"--sharp": f"synthetic:known?sharp={tmp_path / 'link'}"}, folders={"--out": folder / "x"})
    with pytest.raises(UserError, match="holds --images"):
        check_outputs({"--images": str(folder)}, folders={"--out": tmp_path})
    check_outputs({"--camera": "0", "--url": "rtsp://host/x", "--deblurrer": "starter"},
                  files={"--stats": tmp_path / "s.json"})
    (tmp_path / "empty").mkdir()
    assert owned_folder(tmp_path / "empty", "--grid", "grids") == tmp_path / "empty"
    (tmp_path / "empty" / MARKER).write_text("report\n")
    with pytest.raises(UserError, match="holds files that a blur2blur grids did not write"):
        owned_folder(tmp_path / "empty", "--grid", "grids")


def test_train_export_and_pack_refuse_outputs_over_their_inputs(tmp_path):
    pairs = pair_folder(tmp_path / "pairs", count=4, bad_files=False)
    b2b_train, b2b_export = BIN / "b2b-train", BIN / "b2b-export"
    result = run(b2b_train, "deblurrer", "--pairs", pairs, "--out", pairs / "run", "--steps", 1)
    assert_one_line_error(result, f"--out {pairs / 'run'}: is inside --pairs {pairs}")
    result = run(b2b_train, "synth", "--domain", "known", "--sharp", pairs / "sharp", "--out", pairs, "--count", 2)
    assert_one_line_error(result, f"--out {pairs}: holds --sharp")
    shipped = tmp_path / "starter.pt"
    shipped.write_text("mine")
    result = run(b2b_train, "pack", "starter", "--out", shipped)
    assert_one_line_error(result, "exists; pass --force to replace it")
    assert shipped.read_text() == "mine"
    result = run(b2b_export, "--deblurrer", "starter", "--converter", tmp_path / "starter.pt", "--out", tmp_path)
    assert_one_line_error(result, f"--out {tmp_path}: holds --converter")


def test_inputs_a_command_finds_by_itself_are_inputs_too(tmp_path, clip_and_bundle):
    clip, bundle = clip_and_bundle
    model = tmp_path / "hand.task"
    model.write_bytes(b"a hand model")
    result = subprocess.run([B2B_RUN, "--bundle", str(bundle), "--video", str(clip), "--headless", "--app",
                             "handpose", "--records", str(model), "--force"], capture_output=True, text=True,
                            env={**os.environ, "B2B_HAND_MODEL": str(model)})
    assert_one_line_error(result, f"--records {model}: is $B2B_HAND_MODEL")
    checkpoint = tmp_path / "deblurrer.pt"
    checkpoint.write_bytes(b"weights")
    meta = json.loads((bundle / "meta.json").read_text())
    (bundle / "meta.json").write_text(json.dumps({**meta, "sources": {"deblurrer": {"path": str(checkpoint)}}}))
    result = run(BIN / "b2b-bench", "--bundle", bundle, "--json", checkpoint, "--force")
    assert_one_line_error(result, "is the bundle's checkpoints")
    assert model.read_bytes() == b"a hand model" and checkpoint.read_bytes() == b"weights"


def test_links_pipes_and_nested_outputs(tmp_path, clip_and_bundle):
    clip, bundle = clip_and_bundle
    os.link(clip, tmp_path / "hard.mp4")
    result = run(B2B_RUN, "--bundle", bundle, "--video", clip, "--headless", "--output", tmp_path / "hard.mp4",
                 "--force")
    assert_one_line_error(result, "is --video")
    os.mkfifo(tmp_path / "pipe")
    result = run(B2B_RUN, "--bundle", bundle, "--video", clip, "--headless", "--stats", tmp_path / "pipe", "--force")
    assert_one_line_error(result, "is not a regular file")
    pairs = pair_folder(tmp_path / "pairs", count=2, bad_files=False)
    result = run(B2B_EVAL, "deblur", "--bundle", bundle, "--pairs", pairs, "--report", tmp_path / "rep", "--json",
                 tmp_path / "rep" / "eval.json")
    assert_one_line_error(result, "is inside --report")


def test_a_run_removes_only_its_own_kind_of_temporary(tmp_path, clip_and_bundle):
    clip, bundle = clip_and_bundle
    mine = tmp_path / ".out.my backup.tmp.mp4"
    mine.write_bytes(b"not a temporary of b2b-run")
    stale = tmp_path / ".out.12345.tmp.mp4"
    stale.write_bytes(b"left by a killed run")
    result = run(B2B_RUN, "--bundle", bundle, "--video", clip, "--headless", "--output", tmp_path / "out.mp4",
                 "--backend", "onnxruntime")
    assert result.returncode == 0, result.stderr
    assert mine.read_bytes() == b"not a temporary of b2b-run" and not stale.exists()


def test_folders_holding_files_of_the_users_are_never_taken_over(tmp_path):
    pairs = pair_folder(tmp_path / "pairs", count=4, bad_files=False)
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    (run_folder / "config.json").write_text("my settings")
    result = run(BIN / "b2b-train", "deblurrer", "--pairs", pairs, "--out", run_folder, "--steps", 1, "--arch",
                 "nafnet-tiny")
    assert_one_line_error(result, "holds config.json but no last.pt")
    assert (run_folder / "config.json").read_text() == "my settings"
    report = tmp_path / "report"
    build_report(report, "test")
    (report / "notes.txt").write_text("my notes")
    with pytest.raises(UserError, match="holds notes.txt, which a blur2blur report does not write"):
        build_report(report, "test")
    assert (report / "notes.txt").read_text() == "my notes"


def test_synth_names_its_own_flag_and_takes_any_folder_name(tmp_path):
    b2b_train = BIN / "b2b-train"
    (tmp_path / "clip.mp4").write_bytes(b"mine")
    result = run(b2b_train, "synth", "--domain", "known", "--sharp", "skimage", "--out", tmp_path / "clip.mp4",
                 "--video", 3)
    assert_one_line_error(result, "exists; pass --overwrite to replace it")
    (tmp_path / "here").mkdir()
    result = subprocess.run([str(b2b_train), "synth", "--domain", "known", "--sharp", "skimage", "--out", ".",
                             "--count", "2", "--size", "32"], capture_output=True, text=True, cwd=tmp_path / "here")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "here" / "blur").glob("*.png"))) == 2
