"""The frame shapes a bundle is to promise, as b2b-export's options give them (the type: runtime/bundle.py)."""

from __future__ import annotations

from blur2blur.errors import UserError
from blur2blur.runtime.bundle import DEFAULT_MAX, DEFAULT_MIN, DEFAULT_OPT, MAX_BATCH, MAX_SIDE, ShapeBounds


def parse_hw(text: str, option: str) -> tuple[int, int]:
    """'720x1280' (HEIGHTxWIDTH) -> (720, 1280); a one-line error naming `option` otherwise."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"{option} {text}: write it as HEIGHTxWIDTH, e.g. 720x1280") from None
    return height, width


def shape_bounds(height: int | None = None, width: int | None = None, min_shape: str | None = None,
                 opt_shape: str | None = None, max_shape: str | None = None, batch: int = 1) -> ShapeBounds:
    """Bounds from the command line: --height/--width fix one shape; --min/--opt/--max-shape a range.

    Missing range ends take the defaults (min 32x32, opt 720x1280, max 1080x1920), widened to hold the
    shapes given; a missing opt is the default moved into the range. Raises UserError for values that are
    not positive, out of range or unordered.
    """
    fixed = height is not None or width is not None
    ranged = any(v is not None for v in (min_shape, opt_shape, max_shape))
    if fixed and ranged:
        raise UserError("give either --height/--width (one fixed shape) or --min/--opt/--max-shape, not both")
    if fixed and (height is None or width is None):
        raise UserError("--height and --width go together: give both")
    if not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise UserError(f"--batch {batch}: must be between 1 and {MAX_BATCH}")
    if fixed:
        low = opt = high = (height, width)
        names = ("--height/--width",) * 3
    else:
        low = parse_hw(min_shape, "--min-shape") if min_shape else None
        high = parse_hw(max_shape, "--max-shape") if max_shape else None
        opt = parse_hw(opt_shape, "--opt-shape") if opt_shape else None
        # A missing end of the range is the default, widened to take the shapes given.
        given = [s for s in (low, opt, high) if s]
        low = low or tuple(min([d, *(s[i] for s in given)]) for i, d in enumerate(DEFAULT_MIN))
        high = high or tuple(max([d, *(s[i] for s in given)]) for i, d in enumerate(DEFAULT_MAX))
        if opt is None:
            opt = tuple(min(max(d, lo), hi) for d, lo, hi in zip(DEFAULT_OPT, low, high))
        names = ("--min-shape", "--opt-shape", "--max-shape")
    for name, (h, w) in zip(names, (low, opt, high)):
        if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise UserError(f"{name} {h}x{w}: height and width must be between 1 and {MAX_SIDE}")
    if not all(lo <= o <= hi for lo, o, hi in zip(low, opt, high)):
        raise UserError(f"shapes must satisfy min <= opt <= max in height and in width; got min {low[0]}x{low[1]}, "
                        f"opt {opt[0]}x{opt[1]}, max {high[0]}x{high[1]}")
    return ShapeBounds(tuple(low), tuple(opt), tuple(high), batch)
