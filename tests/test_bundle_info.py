import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import randomized

from blur2blur.export.bundle_info import check_artefacts, describe
from blur2blur.export.onnx_export import export_bundle
from blur2blur.models import create_model
from blur2blur.models.checkpoint import save_checkpoint
from blur2blur.runtime.bundle import ShapeBounds

B2B_EXPORT = str(Path(sys.executable).parent / "b2b-export")


def inspect(bundle: Path) -> subprocess.CompletedProcess:
    return subprocess.run([B2B_EXPORT, "inspect", str(bundle)], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inspect")
    save_checkpoint(folder / "deblurrer.pt", randomized(create_model("nafnet-tiny")), "deblurrer")
    export_bundle(folder / "deblurrer.pt", folder / "bundle", fp16=True,
                  bounds=ShapeBounds((16, 16), (64, 96), (128, 160), 2))
    return folder / "bundle"


def test_inspect_prints_shapes_precision_figures_sizes_and_intact_files(exported):
    result = inspect(exported)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "shapes  min 1x16x16x3, opt 2x64x96x3, max 2x128x160x3" in out
    assert "precision fp16 (graphs: fp32, fp16; opset 17)" in out
    assert "verified fp32 graph vs PyTorch: max error 0 grey levels" in out
    assert "verified fp16 graph vs fp32 graph: PSNR" in out and "finite" in out and "NOT FINITE" not in out
    assert "source  deblurrer: nafnet-tiny" in out and "engine  none (not asked for: --no-engine)" in out
    meta = json.loads((exported / "meta.json").read_text())
    for name, info in meta["artefacts"].items():
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert f"{info['bytes'] / 1e6:.1f} MB" in line and line.endswith("sha256 ok")


def test_inspect_needs_no_torch(exported):
    code = (f"import sys; sys.modules['torch'] = None\nfrom blur2blur.export.cli import main\n"
            f"main(['inspect', {str(exported)!r}])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "sha256 ok" in result.stdout


def test_inspect_flags_changed_files_with_a_one_line_error(exported, tmp_path):
    bundle = tmp_path / "bundle"
    subprocess.run(["cp", "-r", str(exported), str(bundle)], check=True)
    with open(bundle / "model.onnx", "ab") as f:
        f.write(b"\0")  # a corrupt graph
    (bundle / "model.fp16.onnx").unlink()
    assert check_artefacts(bundle, json.loads((bundle / "meta.json").read_text())) == {
        "model.onnx": "modified", "model.fp16.onnx": "missing"}
    result = inspect(bundle)
    assert result.returncode != 0
    assert "MODIFIED: sha256 differs" in result.stdout and "MISSING" in result.stdout
    expected = (f"error: bundle {bundle}: model.onnx is modified, model.fp16.onnx is missing: the bundle was changed "
                "after export; export it again")
    assert result.stderr.strip().splitlines() == [expected]
    assert describe(bundle)[1] == ["model.onnx is modified", "model.fp16.onnx is missing"]


def test_inspect_of_what_is_not_a_bundle_is_a_one_line_error(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "meta.json").write_text("{not json")
    (tmp_path / "empty").mkdir()
    for target, match in ((tmp_path / "nowhere", "no such folder"), (tmp_path / "empty", "no meta.json"),
                          (tmp_path / "broken", "unreadable meta.json")):
        result = inspect(target)
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1 and match in result.stderr, result.stderr
