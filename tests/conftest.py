"""Fixtures shared by the whole suite."""
from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# Servers the tests start keep their data in pytest's temp dirs, private to the user running
# the tests: a root server's local pilots, switched to frazil-pilot, could not reach them. The
# switch itself is tested on its own (tests/pilot/test_trust_boundaries.py).
os.environ.setdefault("FRAZIL_LOCAL_PILOT_USER", "")
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    """``../shared`` beside the checkout: DESIGN.md, reference/ and compat/ vectors."""
    if not SHARED.is_dir():
        raise RuntimeError(f"../shared not found at {SHARED}: the compat vectors live there")
    return SHARED
