"""Fixtures shared by the whole suite."""
from __future__ import annotations

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    """``../shared`` beside the checkout: DESIGN.md, reference/ and compat/ vectors."""
    if not SHARED.is_dir():
        raise RuntimeError(f"../shared not found at {SHARED}: the compat vectors live there")
    return SHARED
