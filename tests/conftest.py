"""Shared fixtures: the real-data folder beside the repo (skipped where a clone lacks it)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` (MANIFEST.md there); tests that need it skip where it is absent."""
    if not (SHARED_DATA / "MANIFEST.md").is_file():
        pytest.skip(f"real-data folder {SHARED_DATA} is absent (it sits beside the repo in CI only)")
    return SHARED_DATA
