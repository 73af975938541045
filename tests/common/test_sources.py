"""Which relative module sources a submission carries, and the bundle's limits (common/sources.py)."""
from __future__ import annotations

import base64

import pytest

from common.sources import BundleError, clean_path, collect, decode, encode, relative_sources


def _config(*srcs: str, data: list | None = None) -> dict:
    return {"tasks": [{"name": "t", "data": data or [], "trays": [{"modules": [{"src": s} for s in srcs]}]}]}


def test_relative_sources_and_what_stages_them() -> None:
    config = _config("a.py", "./sub/b.sh", "/abs/c.py", "$(job).py", "http://x/d.py", "../e.py", "f.py",
                     data=[{"remote": "gsiftp://host/dir/f.py", "movement": "input"}])
    found = [(s.path, s.staged) for s in relative_sources(config)]
    assert found == [("a.py", False), ("sub/b.sh", False), ("f.py", True)]
    assert [clean_path(p) for p in ("./a/./b.py", "/x", "..", "a/../../b", "")] == ["a/b.py", None, None, None, None]


def test_collect_carries_files_beside_the_config_only(tmp_path) -> None:
    (tmp_path / "cfg" / "sub").mkdir(parents=True)
    (tmp_path / "cfg" / "a.py").write_text("print(1)")
    (tmp_path / "cfg" / "sub" / "b.sh").write_text("echo")
    (tmp_path / "outside.py").write_text("secret")
    (tmp_path / "cfg" / "link.py").symlink_to(tmp_path / "outside.py")
    files, problems = collect(_config("a.py", "sub/b.sh", "link.py", "gone.py"), tmp_path / "cfg")
    assert files == {"a.py": b"print(1)", "sub/b.sh": b"echo"}
    assert [p.split(":")[0] for p in problems] == ["config['tasks'][0]['trays'][0]['modules'][2]['src']",
                                                   "config['tasks'][0]['trays'][0]['modules'][3]['src']"]
    (tmp_path / "cfg" / "big.py").write_bytes(b"x" * 2000)
    _, problems = collect(_config("a.py", "big.py"), tmp_path / "cfg", max_bytes=1000)
    assert problems == ["the module sources beside the config are 2008 bytes, more than the 1000 a submission "
                        "may carry"]


def test_decode_round_trips_and_refuses_bad_bundles() -> None:
    assert decode(encode({"a.py": b"\x00\xff"}), 10) == {"a.py": b"\x00\xff"}
    for value, message in (({"a.py": base64.b64encode(b"x" * 11).decode()}, "larger than 10 bytes"),
                           ({"/a.py": ""}, "clean relative path"), ({"a.py": "%%"}, "not valid base64"),
                           ({str(i): "" for i in range(300)}, "more than 256")):
        with pytest.raises(BundleError, match=message):
            decode(value, 10)
