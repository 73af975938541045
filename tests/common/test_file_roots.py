"""file:// outputs stay inside the allowed roots (issue 11 item 8):
normalised, no ``..``, no escape through a link, no write into the server's
own files, never a change of an existing file's owner or mode; a refusal is
an ``OutsideRoots`` (kind ``config``, not retried)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from common.transfer import transfer_out
from common.transfer.local import LocalFiles, OutsideRoots, escape_reason


def _source(tmp_path: Path, text: str = "payload\n") -> Path:
    src = tmp_path / "src.txt"
    src.write_text(text)
    return src


def _schemes(roots: list[str] | None, denied: list[str] = ()) -> dict[str, LocalFiles]:
    return {"file": LocalFiles(roots=roots, denied=list(denied))}


def test_an_output_inside_a_root_is_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    record = transfer_out(_source(tmp_path), f"file://{root}/a/b/out.txt", schemes=_schemes([str(root)]))
    assert record.ok and (root / "a" / "b" / "out.txt").read_text() == "payload\n"


@pytest.mark.parametrize("where", ["outside/out.txt", "root/../outside/out.txt", "root/a/../../outside/x"])
def test_escapes_are_refused_at_once_as_config_failures(tmp_path: Path, where: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(OutsideRoots) as caught:
        transfer_out(_source(tmp_path), f"file://{tmp_path}/{where}", schemes=_schemes([str(root)]))
    assert caught.value.kind == "config" and not caught.value.retryable and caught.value.attempts == 1
    assert not (tmp_path / "outside").exists()


def test_dotdot_is_refused_even_without_roots(tmp_path: Path) -> None:
    with pytest.raises(OutsideRoots, match=r"'\.\.'"):
        LocalFiles().upload(_source(tmp_path), f"file://{tmp_path}/a/../b.txt")


def test_no_roots_means_no_file_output(tmp_path: Path) -> None:
    with pytest.raises(OutsideRoots, match="not allowed here"):
        transfer_out(_source(tmp_path), f"file://{tmp_path}/x.txt", schemes=_schemes([]))


def test_a_link_inside_a_root_that_leads_outside_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(OutsideRoots, match="leads to"):
        transfer_out(_source(tmp_path), f"file://{root}/link/new/out.txt", schemes=_schemes([str(root)]))
    assert list(outside.iterdir()) == []
    (root / "file-link").symlink_to(outside / "target.txt")
    with pytest.raises(OutsideRoots, match="symbolic link"):
        transfer_out(_source(tmp_path), f"file://{root}/file-link", schemes=_schemes([str(root)]))
    assert not (outside / "target.txt").exists()


def test_the_servers_own_files_are_denied(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "frazil.db").write_text("the database")
    schemes = _schemes([str(data)], [str(data / "frazil.db"), str(data / "pilots")])
    with pytest.raises(OutsideRoots, match="belongs to the frazil server"):
        transfer_out(_source(tmp_path), f"file://{data}/frazil.db", schemes=schemes)
    with pytest.raises(OutsideRoots, match="belongs to the frazil server"):
        transfer_out(_source(tmp_path), f"file://{data}/pilots/p1/token", schemes=schemes)
    assert (data / "frazil.db").read_text() == "the database"
    assert transfer_out(_source(tmp_path), f"file://{data}/demo/out.txt", schemes=schemes).ok


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    target = root / "out.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    transfer_out(_source(tmp_path, "new\n"), f"file://{target}", schemes=_schemes([str(root)]))
    assert target.read_text() == "new\n"
    info = target.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_uid == os.geteuid()


def test_an_existing_file_of_another_owner_is_left_alone(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        raise AssertionError("this test gives a file to another user: run it as root (CI does)")
    root = tmp_path / "root"
    root.mkdir()
    target = root / "theirs.txt"
    target.write_text("theirs")
    os.chown(target, 65534, 65534)
    with pytest.raises(OutsideRoots, match="owner"):
        transfer_out(_source(tmp_path), f"file://{target}", schemes=_schemes([str(root)]))
    assert target.read_text() == "theirs" and target.stat().st_uid == 65534


def test_escape_reason_by_text() -> None:
    assert escape_reason("/data/out/x", ["/data"]) is None
    assert escape_reason("/data", ["/data"]) is not None  # the root itself is not a file to write
    assert escape_reason("/database/x", ["/data"]) is not None  # a prefix of the name is not a folder
    assert escape_reason("/data/x/../../etc/passwd", ["/data"]) is not None
