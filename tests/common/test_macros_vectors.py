"""Every compatibility vector of ../shared/compat/macro_vectors.jsonl holds,
with the same JSON type (7 and "7" differ)."""
from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from common.macros import expand

COMPAT = pathlib.Path(__file__).resolve().parents[3] / "shared" / "compat"
VECTORS = COMPAT / "macro_vectors.jsonl"


def _load() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not VECTORS.is_file():
        raise RuntimeError(f"compat vectors not found at {VECTORS} (../shared beside the checkout)")
    lines = [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]
    head, cases = lines[0], lines[1:]
    assert head["context"] == "default"
    return head["value"], cases


CONTEXT, CASES = _load()


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same JSON type at every level."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_file_has_all_vectors() -> None:
    assert len(CASES) == 106


@pytest.mark.parametrize("case", CASES, ids=[f"{i + 2}:{c['rule']}:{c['in']!r}"[:80] for i, c in enumerate(CASES)])
def test_vector(case: dict[str, Any]) -> None:
    kwargs = CONTEXT if case["context"] == "default" else {}
    before = json.dumps(kwargs, sort_keys=True)
    out = expand(case["in"], **kwargs)
    assert _same(out, case["out"]), f"{case['in']!r} -> {out!r}, expected {case['out']!r} ({case['rule']})"
    assert json.dumps(out) == json.dumps(case["out"])
    assert json.dumps(kwargs, sort_keys=True) == before, "expand mutated its inputs"


def test_same_type_helper_tells_types_apart() -> None:
    assert not _same(7, "7")
    assert not _same(1.5, "1.5")
    assert not _same(1, True)
    assert _same({"a": [1, "x"]}, {"a": [1, "x"]})
