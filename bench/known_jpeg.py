"""Should the known camera compress its frames, as GoPro's do? Pairs for a fifth stage that answers it.

The known camera (`known`, `still`) has mild sensor noise and no JPEG. This writes the same pairs as
bench/capacity.py's control with JPEG added (quality drawn in --quality), so that the starter trained a fifth
stage on them can be set beside the starter trained on the control's pairs (README, "The starter deblurrer"):

    python bench/known_jpeg.py --out runs/jpeg/pairs
    b2b-train deblurrer --pairs runs/jpeg/pairs --init starter --out runs/jpeg/starter --rotate --steps 2000 \\
        --crop 96 --lr 5e-4 --warmup 100 --eval-every 500
    python bench/domains.py --deblurrer runs/jpeg/starter/last.pt   # and b2b-eval deblur on the RSBlur pairs
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from blur2blur.data.blur.content import load_sharp_images
from blur2blur.data.blur.domains import DOMAINS
from blur2blur.data.blur.write import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="pairs folder to write: blur/ and sharp/, with known/, still/")
    parser.add_argument("--quality", default="80,95", help="JPEG quality range of the known camera")
    parser.add_argument("--count", default="3000,468", help="known and still pairs (the control's)")
    args = parser.parse_args()
    low, high = (int(q) for q in args.quality.split(","))
    images = load_sharp_images("photos,texleaves:64,skimage")
    for (name, seed), count in zip((("known", 20), ("still", 30)), (int(n) for n in args.count.split(","))):
        compressed = f"{name}-jpeg"
        DOMAINS[compressed] = dataclasses.replace(DOMAINS[name], name=compressed, jpeg_quality=(low, high))
        work = Path(args.out) / f".{name}"
        synthesize(compressed, images, work, count=count, size=128, seed=seed)
        for side in ("blur", "sharp"):  # blur/known/NNNNN.png beside sharp/known/NNNNN.png, and so on
            (Path(args.out) / side).mkdir(parents=True, exist_ok=True)
            (work / side).rename(Path(args.out) / side / name)


if __name__ == "__main__":
    main()
