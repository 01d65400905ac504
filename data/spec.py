"""Source strings as users write them: `[kind:]PATH[?key=value&...]`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from blur2blur.errors import UserError


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source string: kind (None to detect), path and `?key=value` options."""

    kind: str | None
    path: str
    options: dict[str, str]


def parse_spec(spec: str, kinds: Sequence[str]) -> SourceSpec:
    """Split `kind:PATH?key=value&key=value`; a bare PATH leaves kind None. Windows drives are not kinds."""
    kind, rest = None, spec.strip()
    match = re.match(r"^([A-Za-z][\w+-]*):(.*)$", rest)
    if match and len(match.group(1)) > 1 and not Path(rest).exists():
        kind, rest = match.group(1).lower(), match.group(2)
        if kind not in kinds:
            known = ", ".join(k + ":" for k in kinds)
            raise UserError(f"{spec}: unknown source kind '{kind}'; use one of {known} or a plain path")
    options: dict[str, str] = {}
    if "?" in rest and not Path(rest).exists():
        rest, query = rest.rsplit("?", 1)
        for part in filter(None, query.split("&")):
            key, sep, value = part.partition("=")
            if not sep or not key:
                raise UserError(f"{spec}: option '{part}' should read key=value")
            options[key.strip().replace("-", "_")] = value.strip()
    return SourceSpec(kind, rest, options)


def check_options(spec: str, kind: str, options: dict[str, str], allowed: Sequence[str]) -> None:
    """A UserError naming the options of `spec` that its kind does not take."""
    unknown = [key for key in options if key not in allowed]
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise UserError(f"{spec}: unknown option {', '.join(unknown)} for {kind} (valid: {valid})")


def flag(spec: str, value: str) -> bool:
    """A yes/no option's value."""
    low = value.lower()
    if low in ("1", "true", "yes", "on", ""):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise UserError(f"{spec}: '{value}' is not a yes/no value (use 1 or 0)")
