"""b2b-eval handpose with real MediaPipe on the annotated hand photos in ../shared/data, and its bad input."""

import json
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from helpers import B2B_EVAL, assert_one_line_error, write_frame_bundle

from blur2blur.evaluate.handpose import ReferenceHand, match_hands

ONEHAND = "hands/annotated_mmpose/onehand10k"


def b2b_eval(*args) -> subprocess.CompletedProcess:
    return subprocess.run([B2B_EVAL, "handpose", *map(str, args)], capture_output=True, text=True, check=False)


def test_a_detection_matches_the_hand_it_lies_on():
    keypoints = np.stack([np.linspace(0, 100, 21), np.linspace(0, 50, 21)], 1)
    hand = ReferenceHand(keypoints, np.ones(21, bool), size=100.0)
    visible_half = ReferenceHand(keypoints, np.arange(21) < 10, size=100.0)
    near = {"landmarks": [[x + 3, y + 4, 0] for x, y in keypoints]}  # 5 px off: 0.05 of the hand
    other = {"landmarks": [[x + 300, y, 0] for x, y in keypoints]}  # another hand
    assert match_hands([other, near], [hand]) == [pytest.approx(0.05)]
    assert match_hands([other], [hand]) == [None]
    assert match_hands([near], [hand, visible_half]) == [pytest.approx(0.05), None]  # one detection, one hand
    # closest pairs first, not the first hand first: the first reference gets the detection 0.2 from it
    second = ReferenceHand(keypoints + [10, 0], np.ones(21, bool), size=100.0)
    a = {"landmarks": [[x + 13, y, 0] for x, y in keypoints]}  # 0.13 from the first, 0.03 from the second
    b = {"landmarks": [[x - 20, y, 0] for x, y in keypoints]}  # 0.20 from the first, 0.30 from the second
    assert match_hands([a, b], [hand, second]) == [pytest.approx(0.2), pytest.approx(0.03)]


def test_annotated_photos_sharp_blurry_and_restored(shared_data, tmp_path):
    bundle = write_frame_bundle(tmp_path / "identity", invert=False)  # restores nothing: equals the blurry row
    result = b2b_eval("--keypoints", shared_data / ONEHAND / "test_onehand10k.json", "--domain", "shake",
                      "--bundle", bundle, "--json", tmp_path / "hands.json", "--grid", tmp_path / "grids")
    assert result.returncode == 0, result.stderr
    assert "| sharp | 4/4 (100%) |" in result.stdout and "| blurry (shake) |" in result.stdout
    figures = json.loads((tmp_path / "hands.json").read_text())
    summary = figures["summary"]
    assert figures["annotated"] and figures["photos"] == 4
    assert summary["sharp"]["error"] < 0.15  # MediaPipe lands on the annotated keypoints
    assert summary["bundle"] == summary["blurry"]
    assert summary["blurry"]["detected"] < 4 or summary["blurry"]["error"] > summary["sharp"]["error"]
    assert sorted(p.name for p in (tmp_path / "grids").glob("*.png")) == ["1402.png", "33.png", "784.png", "9.png"]
    # the identity bundle detects exactly the blurry image's hands: on them, its error is blurry's
    assert summary["bundle"]["both_detected"] == summary["blurry"]["detected"]
    assert summary["bundle"]["error_both"] == summary["bundle"]["blurry_error_both"] == summary["blurry"]["error"]


def test_each_photo_blurred_several_times_and_compared_on_the_hands_both_detect(shared_data, tmp_path):
    result = b2b_eval("--keypoints", shared_data / ONEHAND / "test_onehand10k.json", "--domain", "defocus",
                      "--draws", "3", "--seed", "5", "--json", tmp_path / "hands.json", "--grid", tmp_path / "grids",
                      "--deblurrer", "starter")
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "hands.json").read_text())
    assert figures["photos"] == 4 and figures["draws"] == 3 and len(figures["images"]) == 12
    assert "4 photos, each blurred 3 times" in result.stdout and "wrote 12 grids" in result.stdout
    assert len(list((tmp_path / "grids").glob("*.png"))) == 12
    rows = figures["images"]
    assert [row["draw"] for row in rows[:3]] == [0, 1, 2] and len({row["name"] for row in rows[:3]}) == 1
    summary = figures["summary"]
    assert summary["sharp"]["hands"] == summary["deblurrer"]["hands"] == 12
    for key in ("sharp", "deblurrer"):  # recomputed from the rows: hands detected in this kind and in blurry
        both = [(r[key]["errors"][0], r["blurry"]["errors"][0]) for r in rows
                if r[key]["errors"][0] is not None and r["blurry"]["errors"][0] is not None]
        assert summary[key]["both_detected"] == len(both) > 0
        assert summary[key]["error_both"] == pytest.approx(np.mean([e for e, _ in both]))
        assert summary[key]["blurry_error_both"] == pytest.approx(np.mean([b for _, b in both]))
    assert summary["sharp"]["error_both"] < summary["sharp"]["blurry_error_both"]  # sharp beats blurry on its hands
    assert f"({summary['deblurrer']['both_detected']}) |" in result.stdout


def test_photos_without_annotations_take_the_sharp_detections_as_reference(shared_data, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("hand_thumb_up.jpg", "hand_landmarker_test_image.jpg"):
        shutil.copy(shared_data / "hands/mediapipe_samples_pixabay" / name, photos)
    bundle = write_frame_bundle(tmp_path / "negative")  # 255 - x: a negative, where no hand is found
    result = b2b_eval("--images", photos, "--domain", "known", "--bundle", bundle, "--json", tmp_path / "h.json")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "h.json").read_text())["summary"]
    assert summary["sharp"]["hands"] >= 2  # a hand in each photo at least
    assert summary["sharp"]["rate"] == 1.0 and summary["sharp"]["error"] == 0.0  # the reference itself
    assert summary["bundle"]["detected"] == 0 and summary["bundle"]["error"] is None
    assert f"| bundle | 0/{summary['sharp']['hands']} (0%) | - |" in result.stdout


def test_bad_input_is_one_line(shared_data, tmp_path):
    bundle = write_frame_bundle(tmp_path / "identity", invert=False)
    (tmp_path / "empty").mkdir()
    annotations = json.loads((shared_data / ONEHAND / "test_onehand10k.json").read_text())
    annotations["images"][0]["file_name"] = "gone.jpg"
    (tmp_path / "missing_image.json").write_text(json.dumps(annotations))
    (tmp_path / "not_coco.json").write_text('{"hands": []}')

    def fails(match, *args):
        assert_one_line_error(b2b_eval("--bundle", bundle, *args), match)

    fails("--keypoints", "--keypoints", tmp_path / "absent.json", "--domain", "known")
    fails("gone.jpg", "--keypoints", tmp_path / "missing_image.json", "--images", shared_data / ONEHAND,
          "--domain", "known")
    fails("not a COCO-style keypoint JSON", "--keypoints", tmp_path / "not_coco.json", "--domain", "known")
    fails("holds no images", "--images", tmp_path / "empty", "--domain", "known")
    fails("holds no .json", "--keypoints", tmp_path / "empty", "--domain", "known")
    fails("--domain", "--images", shared_data / ONEHAND, "--domain", "fog")
    fails("give hand photos", "--domain", "known")
    fails("--draws", "--video", shared_data / ONEHAND / "9.jpg", "--draws", "2")
    fails("--grid", "--images", shared_data / ONEHAND, "--domain", "known", "--grid", tmp_path / "missing_image.json")


def test_unlabelled_hands_are_left_out_and_a_failed_run_leaves_no_grids(shared_data, tmp_path):
    annotations = json.loads((shared_data / ONEHAND / "test_onehand10k.json").read_text())
    annotations["annotations"][0]["keypoints"] = [0] * 63  # a hand nobody labelled
    (tmp_path / "hands.json").write_text(json.dumps(annotations))
    bundle = write_frame_bundle(tmp_path / "identity", invert=False)
    result = b2b_eval("--keypoints", tmp_path / "hands.json", "--images", shared_data / ONEHAND, "--domain", "known",
                      "--bundle", bundle, "--grid", tmp_path / "grids")
    assert result.returncode == 0, result.stderr
    assert "left out 1 hands with no visible keypoint" in result.stderr and "3 photos" in result.stdout
    assert len(list((tmp_path / "grids").glob("*.png"))) == 3

    empty = tmp_path / "plain"
    empty.mkdir()
    cv2.imwrite(str(empty / "wall.png"), np.full((64, 64, 3), 128, np.uint8))  # no hand to take as reference
    assert_one_line_error(b2b_eval("--images", empty, "--domain", "known", "--bundle", bundle, "--grid",
                                   tmp_path / "nogrids"), "no reference hand")
    assert not (tmp_path / "nogrids").exists() and [p.name for p in tmp_path.iterdir() if "nogrids" in p.name] == []
