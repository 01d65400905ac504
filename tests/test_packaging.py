"""What the installed distribution promises: stage subpackages, one OpenCV, a torch-free runtime, CLIs."""

import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import cv2
import pytest
from helpers import write_frame_bundle, write_video

BIN = Path(sys.executable).parent


def test_exactly_one_opencv_distribution_is_installed():
    names = {dist.metadata["Name"].lower() for dist in distributions()}
    assert len({name for name in names if name.startswith("opencv")}) == 1, sorted(names)


def test_b2b_run_works_without_torch(tmp_path):
    # Make `import torch` fail, as on an edge device with only blur2blur[runtime] installed.
    write_video(tmp_path / "in.mp4", frames=3)
    write_frame_bundle(tmp_path / "bundle")

    def b2b_run(out: str, *extra: str) -> list[Path]:
        args = ["--bundle", str(tmp_path / "bundle"), "--video", str(tmp_path / "in.mp4"), "--app", "side-by-side",
                "--output", str(tmp_path / out), "--headless", *extra]
        code = f"import sys; sys.modules['torch'] = None\nfrom blur2blur.runtime.cli import main\nmain({args!r})\n"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return sorted((tmp_path / out).iterdir())

    written = b2b_run("out")
    assert len(written) == 3 and cv2.imread(str(written[0])).shape == (48, 128, 3)  # input | restored
    again = b2b_run("again", "--side-by-side")
    assert cv2.imread(str(again[0])).shape == (48, 128, 3)  # the pair once, however it is asked for


def test_data_imports_and_makes_pairs_without_torch():
    # blur2blur.data serves evaluate/ and bench/ as well as train/: numpy and OpenCV only.
    code = (
        "import importlib, pkgutil, sys; sys.modules['torch'] = None\n"
        "import blur2blur.data as data\n"
        "for module in pkgutil.walk_packages(data.__path__, 'blur2blur.data.'):\n"
        "    importlib.import_module(module.name)\n"
        "from blur2blur.data.sources import open_pairs\n"
        "blurry, sharp = open_pairs('synthetic:known?sharp=deadleaves:2&size=32&count=2').load(1)\n"
        "print(blurry.shape, sharp.shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(32,", "32,", "3)"] * 2


def test_stage_folders_are_subpackages_of_blur2blur():
    import blur2blur.apps
    import blur2blur.data
    import blur2blur.export
    import blur2blur.models
    import blur2blur.runtime
    import blur2blur.train

    root = Path(blur2blur.models.__file__).parents[1]
    for package in (blur2blur.data, blur2blur.models, blur2blur.train, blur2blur.export, blur2blur.runtime,
                    blur2blur.apps):
        assert Path(package.__file__).parent.parent == root


@pytest.mark.parametrize("command", ["b2b-train", "b2b-export", "b2b-run"])
def test_console_scripts_explain_themselves(command):
    result = subprocess.run([str(BIN / command), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "Usage:" in result.stdout and "--debug" in result.stdout
