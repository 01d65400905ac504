"""Models by name, wherever a checkpoint path is taken: `starter`, the deblurrer shipped in this folder, and
NAFNet's official weights (`nafnet-gopro-w32`, `nafnet-gopro-w64`, `nafnet-reds-w64`) once fetched.

One resolver turns a name or a path into a file, so every command that takes a deblurrer checkpoint takes
these names too. Official files live in the cache folder under their authors' names (`b2b-train
fetch-weights` puts them there: weights/fetch.py); a missing one is a one-line error saying how to get it.
The shipped file is a blur2blur checkpoint with an FP16 state dict (loading casts it back to FP32); `make
starter` reproduces it, and `b2b-train pack` writes it from a training run. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blur2blur.errors import UserError
from blur2blur.files.cache import user_cache_dir


@dataclass(frozen=True)
class OfficialWeights:
    """One official checkpoint: its name here, the authors' file name, its size and sha256, the preset it
    loads as, a line about it, the authors' Google Drive id, and the mirrors to fetch it from, in order."""

    name: str
    file: str
    size: int
    sha256: str
    arch: str
    about: str
    drive_id: str
    mirrors: tuple[str, ...]

    @property
    def drive_url(self) -> str:
        return f"https://drive.google.com/file/d/{self.drive_id}/view"


def _hugging_face(file: str, *repos: str) -> tuple[str, ...]:
    return tuple(f"https://huggingface.co/{repo}/resolve/main/{file}" for repo in repos)


# Sizes and GoPro hashes: docs/method.md (the authors publish no hashes). Two Hugging Face model repos mirror
# all three files; the authors' Space (co-author Xiaojie Chu's demo) holds the REDS file. The REDS sha256 is
# the one that projects pinning these files record: a restoration-model catalog on GitHub (this hash and
# 271,756,689 bytes for nyanko7/nafnet-models' NAFNet-REDS-width64.pth, beside GoPro-w32 figures equal to
# ours) and an MLX port's weight notes (that mirror "byte-identical to the official checkpoints, sha256
# verified against both"); a third project found mikestealth's REDS file byte-identical to the Space's.
MIRRORS = ("nyanko7/nafnet-models", "mikestealth/nafnet-models")
OFFICIAL: dict[str, OfficialWeights] = {w.name: w for w in (
    OfficialWeights("nafnet-gopro-w32", "NAFNet-GoPro-width32.pth", 68_671_121,
                    "19394e6155d12ef6371d1d57496f87f0ec88f92bdffa27c0792690722d5d1a5c", "nafnet-w32",
                    "official NAFNet width 32 trained on GoPro (32.87 dB)", "1Fr2QadtDCEXg6iwWX8OzeZLbHOx2t5Bj",
                    _hugging_face("NAFNet-GoPro-width32.pth", *MIRRORS)),
    OfficialWeights("nafnet-gopro-w64", "NAFNet-GoPro-width64.pth", 271_778_961,
                    "329d3ab4077b8d6b7ff61de376e483714667960bf85be027bf4335cda701196f", "nafnet-w64",
                    "official NAFNet width 64 trained on GoPro (33.71 dB)", "1S0PVRbyTakYY9a82kujgZLbMihfNBLfC",
                    _hugging_face("NAFNet-GoPro-width64.pth", *MIRRORS)),
    # The REDS test options (options/test/REDS/NAFNet-width64.yml) give the GoPro width-64 shape.
    OfficialWeights("nafnet-reds-w64", "NAFNet-REDS-width64.pth", 271_756_689,
                    "175fe8b3cdf3abedfbc87769779c3d9f491e05bb2e73ea9d627883f90a4b2df3", "nafnet-w64",
                    "official NAFNet width 64 trained on REDS: blur with JPEG artefacts (29.09 dB)",
                    "14D4V4raNYIOhETfcuuLI3bGLB-OYIv6X",
                    _hugging_face("NAFNet-REDS-width64.pth", "spaces/chuxiaojie/NAFNet", *MIRRORS)),
)}


def official_path(weights: OfficialWeights) -> Path:
    """Where `weights` lives once fetched: the cache folder, under the authors' file name."""
    return user_cache_dir("weights") / weights.file


def offline_advice(weights: OfficialWeights) -> str:
    """How to install `weights` by hand: which file, from where, to which path."""
    return f"place {weights.file} ({weights.size:,} bytes, from {weights.drive_url}) at {official_path(weights)}"


def missing_message(weights: OfficialWeights, option: str = "checkpoint") -> str:
    """What to do when `weights` is not in the cache folder: fetch it, or place it there by hand."""
    return (f"{option} {weights.name}: the official weights are not in the cache yet: run `b2b-train "
            f"fetch-weights {weights.name}`, or offline {offline_advice(weights)}")


WEIGHTS_DIR = Path(__file__).resolve().parent
SHIPPED = {
    "starter": ("starter.pt", "nafnet-w16 trained by the project on its broad `known` motion blur (CPU default)"),
}


def resolve_checkpoint(spec: str | Path, option: str = "checkpoint") -> Path:
    """The checkpoint file `spec` names: a shipped model's name (`starter`), an official one
    (`nafnet-gopro-w32`, ...) or a path, as given."""
    name = str(spec)
    if name in OFFICIAL:
        path = official_path(OFFICIAL[name])
        if not path.is_file():
            raise UserError(missing_message(OFFICIAL[name], option))
        return path
    if name in SHIPPED:
        path = WEIGHTS_DIR / SHIPPED[name][0]
        if not path.is_file():
            raise UserError(f"{option} {name}: the shipped weights {path} are missing from this install; "
                            "reinstall blur2blur or run `make starter`")
        return path
    return Path(spec)
