"""`b2b-eval handpose`: does restoring blurry images bring the hand landmarker back?

Hand photos are blurred by a named domain (a synthetic camera), then MediaPipe's hand landmarker runs on the
sharp, the blurry and each restored image. Each reference hand is either annotated (21 keypoints from a
COCO-style JSON, such as OneHand10K's or CMU Panoptic's in mmpose) or, for photos without annotations, what the
landmarker finds in the sharp image. A detection is of a reference hand when its 21 landmarks lie, on average,
within half the hand's size of the reference's (the size is the larger side of the hand's box; pairs are matched
closest first). Reported per image kind: the share of reference hands detected, the mean keypoint error of the
detected ones as a fraction of the hand's size, and, since each kind detects its own set of hands, the errors of
a kind and of the blurry images on the hands both detect. Each photo may be blurred several times (`draws`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from blur2blur.errors import UserError
from blur2blur.evaluate.grids import Grids
from blur2blur.evaluate.restorers import LABELS, Restorer
from blur2blur.images import IMAGE_SUFFIXES, is_image, natural_key, read_bgr

log = logging.getLogger(__name__)
MATCH_LIMIT = 0.5  # mean keypoint error, as a fraction of the hand's size, beyond which it is another hand


@dataclass
class ReferenceHand:
    """21 keypoints [x, y] in pixels, which of them are visible, and the hand's size in pixels."""

    keypoints: np.ndarray
    visible: np.ndarray
    size: float


@dataclass
class HandPhoto:
    name: str
    path: Path
    hands: list[ReferenceHand] = field(default_factory=list)  # empty: the sharp image's detections are the reference
    annotated: bool = False


def _hand_from_annotation(annotation: dict, where: str) -> ReferenceHand | None:
    """The annotated hand; None for a hand with no visible keypoint (unlabelled, as datasets have some)."""
    values = np.asarray(annotation.get("keypoints", []), np.float64)
    if values.size != 63:
        raise UserError(f"{where}: annotation {annotation.get('id')} has {values.size / 3:g} keypoints, not the "
                        "hand's 21")
    values = values.reshape(21, 3)
    visible = values[:, 2] > 0
    if not visible.any():
        return None
    if annotation.get("bbox") and len(annotation["bbox"]) == 4:
        size = float(max(annotation["bbox"][2:4]))
    else:
        size = extent(values[visible, :2])
    return ReferenceHand(values[:, :2], visible, max(size, 1.0))


def extent(points: np.ndarray) -> float:
    """The larger side of the box around N x 2 points."""
    return float((points.max(0) - points.min(0)).max())


def read_keypoints(path: Path, images: Path | None = None) -> list[HandPhoto]:
    """Photos and their annotated hands from a COCO-style keypoint JSON; images are looked up by `file_name`
    in `images`, else beside the JSON."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--keypoints {path}: no such file") from None
    except (OSError, ValueError) as err:
        raise UserError(f"--keypoints {path}: unreadable ({err})") from None
    folder = images or path.parent
    photos: dict[int, HandPhoto] = {}
    unlabelled = 0
    try:
        for entry in data["images"]:
            image_path = folder / entry["file_name"]
            if not image_path.is_file():
                raise UserError(f"--keypoints {path}: its image {entry['file_name']} is not in {folder} "
                                "(point --images at the folder that holds them)")
            if entry["id"] in photos:
                raise UserError(f"--keypoints {path}: two images have the id {entry['id']}")
            photos[entry["id"]] = HandPhoto(entry["file_name"], image_path, annotated=True)
        for annotation in data["annotations"]:
            if annotation.get("image_id") not in photos:
                raise UserError(f"--keypoints {path}: annotation {annotation.get('id')} names image "
                                f"{annotation.get('image_id')}, which the file does not list")
            hand = _hand_from_annotation(annotation, f"--keypoints {path}")
            if hand is None:
                unlabelled += 1
            else:
                photos[annotation["image_id"]].hands.append(hand)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise UserError(f"--keypoints {path}: not a COCO-style keypoint JSON (images with file_name and id, "
                        f"annotations with image_id and 21 numeric [x, y, visible] keypoints): {err!r}") from None
    if unlabelled:
        log.warning("--keypoints %s: left out %d hands with no visible keypoint", path, unlabelled)
    return [photo for photo in photos.values() if photo.hands]


def find_photos(keypoints: list[str], images: str | None) -> list[HandPhoto]:
    """Annotated photos from each `--keypoints` file (or every .json in a folder given there), else every image
    in `--images` without annotations."""
    photos: list[HandPhoto] = []
    image_root = Path(images) if images else None
    if image_root is not None and not image_root.is_dir():
        raise UserError(f"--images {images}: no such folder")
    for spec in keypoints:
        path = Path(spec)
        files = sorted(path.rglob("*.json"), key=lambda p: natural_key(str(p))) if path.is_dir() else [path]
        if not files:
            raise UserError(f"--keypoints {spec}: the folder holds no .json keypoint file")
        for file in files:
            found = read_keypoints(file, image_root)
            if not found:
                raise UserError(f"--keypoints {file}: annotates no hand")
            prefix = f"{file.parent.name}/" if len(files) > 1 or len(keypoints) > 1 else ""
            photos += [HandPhoto(prefix + p.name, p.path, p.hands, True) for p in found]
    if keypoints:
        return photos
    if image_root is None:
        raise UserError("give hand photos: --keypoints FILE.json (COCO-style, 21 keypoints) or --images DIR")
    files = sorted((p for p in image_root.rglob("*") if p.is_file() and is_image(p)),
                   key=lambda p: natural_key(str(p)))
    if not files:
        raise UserError(f"--images {images}: holds no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    return [HandPhoto(str(p.relative_to(image_root)), p) for p in files]


def _error(detected: list, reference: ReferenceHand) -> float:
    points = np.asarray(detected, np.float64)[:, :2]
    distances = np.linalg.norm(points[reference.visible] - reference.keypoints[reference.visible], axis=1)
    return float(distances.mean() / reference.size)


def match_hands(detections: list[dict], references: list[ReferenceHand]) -> list[float | None]:
    """For each reference hand, the normalised mean keypoint error of its detection, or None when missed."""
    candidates = sorted((_error(d["landmarks"], r), ri, di) for ri, r in enumerate(references)
                        for di, d in enumerate(detections))
    errors: list[float | None] = [None] * len(references)
    used: set[int] = set()
    for error, ri, di in candidates:
        if error < MATCH_LIMIT and errors[ri] is None and di not in used:
            errors[ri] = error
            used.add(di)
    return errors


def _reference_from(hands: list[dict]) -> list[ReferenceHand]:
    references = []
    for hand in hands:
        points = np.asarray(hand["landmarks"], np.float64)[:, :2]
        references.append(ReferenceHand(points, np.ones(21, bool), max(extent(points), 1.0)))
    return references


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate_handpose(photos: list[HandPhoto], domain, restorers: list[Restorer], detector, seed: int = 0,
                      grids: Grids | None = None, draws: int = 1) -> dict:
    """Detection rate and keypoint error of `detector` (HandPose in image mode) on the sharp, blurry and
    restored versions of every photo, blurred `draws` times (blur i of photo n from the seed [seed, n, i]; the
    first, [seed, n]). With `grids`, a comparison per photo and draw with the landmarks drawn."""
    from blur2blur.apps.handpose import draw_hands

    keys = ["sharp", "blurry"] + [r.key for r in restorers]
    rows, start = [], time.perf_counter()
    with tqdm(total=len(photos) * draws, desc="evaluating", unit="image", leave=False, disable=None) as bar:
        for index, photo in enumerate(photos):
            image = read_bgr(photo.path)
            if image is None:
                raise UserError(f"{photo.path}: cannot be read as an image")
            if min(image.shape[:2]) <= 2 * domain.margin:
                raise UserError(f"{photo.path}: {image.shape[1]}x{image.shape[0]} is too small for the {domain.name} "
                                f"blur (needs over {2 * domain.margin} px a side)")
            for draw in range(draws):
                sharp, blurry = domain.render(image, np.random.default_rng([seed, index] + ([draw] if draw else [])))
                versions = {"sharp": sharp, "blurry": blurry, **{r.key: r.restore(blurry) for r in restorers}}
                detections = {key: detector.detect(version) for key, version in versions.items()}
                references = photo.hands or _reference_from(detections["sharp"])
                row = {"name": photo.name, "draw": draw, "annotated": photo.annotated,
                       "reference_hands": len(references)}
                for key in keys:
                    row[key] = {"found": len(detections[key]), "errors": match_hands(detections[key], references)}
                rows.append(row)
                if grids:
                    name = photo.name if draws == 1 else f"{Path(photo.name).with_suffix('')}_draw{draw + 1}"
                    grids.write(name, [(draw_hands(versions[key].copy(), detections[key]), LABELS[key])
                                       for key in keys])
                bar.update()
    if not any(row["reference_hands"] for row in rows):
        raise UserError("no reference hand: the landmarker finds no hand in any sharp photo (give photos with "
                        "hands, or --keypoints with their annotations)")
    summary = {}
    blurry_errors = [e for row in rows for e in row["blurry"]["errors"]]
    for key in keys:
        errors = [e for row in rows for e in row[key]["errors"]]
        found = [e for e in errors if e is not None]
        both = [(e, b) for e, b in zip(errors, blurry_errors) if e is not None and b is not None]
        summary[key] = {"hands": len(errors), "detected": len(found),
                        "rate": len(found) / len(errors),
                        "error": _mean(found),
                        "both_detected": len(both),  # hands this kind and the blurry images detect
                        "error_both": _mean([e for e, _ in both]),
                        "blurry_error_both": _mean([b for _, b in both])}
    return {"domain": domain.name, "photos": len(photos), "draws": draws,
            "annotated": all(p.annotated for p in photos),
            "columns": {"sharp": "sharp", "blurry": f"blurry ({domain.name})",
                        **{r.key: r.description for r in restorers}},
            "images": rows, "summary": summary, "seconds": round(time.perf_counter() - start, 2)}


def format_handpose_table(result: dict) -> str:
    """A markdown table: hands detected and the mean keypoint error per image kind."""
    reference = "annotated keypoints" if result["annotated"] else "the hands found in the sharp images"
    lines = ["| images | hands detected | mean keypoint error (of hand size) | on the hands blurry also detects: "
             "this / blurry (hands) |", "|---|---|---|---|"]
    for key, figures in result["summary"].items():
        name = f"blurry ({result['domain']})" if key == "blurry" else LABELS[key]
        error = "-" if figures["error"] is None else f"{figures['error']:.3f}"
        both = "-"
        if key != "blurry" and figures.get("both_detected"):  # absent from files of older versions
            both = (f"{figures['error_both']:.3f} / {figures['blurry_error_both']:.3f} "
                    f"({figures['both_detected']})")
        lines.append(f"| {name} | {figures['detected']}/{figures['hands']} ({figures['rate']:.0%}) | "
                     f"{error} | {both} |")
    draws = result.get("draws", 1)
    blurred = f"{result['photos']} photos" + (f", each blurred {draws} times" if draws > 1 else "")
    return "\n".join(lines + ["", f"{blurred}; reference: {reference}; the error is over the hands detected, each "
                              "keypoint's distance divided by the larger side of the hand's box"])

