"""Contract: module sources (both backends) — blobs by sha512, a manifest per config version."""
from __future__ import annotations

import hashlib

import pytest

from server.store import InvalidArgumentError, NotFoundError, Store
from tests.store.helpers import new_dataset


async def test_blobs_are_content_addressed_and_read_through_a_dataset(store: Store) -> None:
    gen, comb = b"print('generate')\n", b"\x00binary\xff" * 100
    digests = await store.put_source_blobs([gen, comb, gen])
    assert digests == [hashlib.sha512(gen).hexdigest(), hashlib.sha512(comb).hexdigest(),
                       hashlib.sha512(gen).hexdigest()]
    assert await store.put_source_blobs([gen]) == digests[:1]  # stored once, again harmless
    assert await store.put_source_blobs([]) == []
    first, other = await new_dataset(store), await new_dataset(store)
    await store.add_config_version(first.dataset_id, {"tasks": []}, "alice")
    # a hash alone reads nothing: only through a dataset whose manifest names it
    assert await store.get_source_blob(first.dataset_id, digests[0]) is None
    await store.set_config_sources(first.dataset_id, 1, {"generate.py": digests[0], "lib/comb.bin": digests[1]})
    assert await store.get_source_blob(first.dataset_id, digests[1]) == comb
    assert await store.get_source_blob(other.dataset_id, digests[1]) is None
    assert await store.get_source_blob(first.dataset_id, "0" * 128) is None


async def test_a_manifest_applies_to_its_version_and_later_ones(store: Store) -> None:
    [a, b] = await store.put_source_blobs([b"a", b"b"])
    ds = await new_dataset(store)
    assert await store.get_config_sources(ds.dataset_id) == {}
    await store.set_config_sources(ds.dataset_id, 1, {"x.py": a})
    assert await store.get_config_sources(ds.dataset_id, 1) == {"x.py": a}
    assert await store.get_config_sources(ds.dataset_id, 3) == {"x.py": a}  # edits keep the submitted sources
    assert await store.get_config_sources(ds.dataset_id, 0) == {}
    await store.set_config_sources(ds.dataset_id, 3, {"x.py": b, "y.sh": a})
    assert await store.get_config_sources(ds.dataset_id, 2) == {"x.py": a}
    assert await store.get_config_sources(ds.dataset_id) == {"x.py": b, "y.sh": a}
    await store.set_config_sources(ds.dataset_id, 4, {})  # an empty manifest overrides too
    assert await store.get_config_sources(ds.dataset_id) == {}
    assert await store.get_config_sources(ds.dataset_id, 3) == {"x.py": b, "y.sh": a}
    await store.set_config_sources(ds.dataset_id, 3, {"x.py": a})  # replaced, not merged
    assert await store.get_config_sources(ds.dataset_id, 3) == {"x.py": a}


async def test_bad_manifests_are_refused(store: Store) -> None:
    [a] = await store.put_source_blobs([b"a"])
    ds = await new_dataset(store)
    for manifest, message in (({"../x.py": a}, "clean relative path"), ({"/etc/passwd": a}, "clean relative path"),
                              ({"./x.py": a}, "clean relative path"), ({"x.py": "abc"}, "sha512"),
                              ({"x.py": "f" * 128}, "no stored blob"), ([("x.py", a)], "manifest")):
        with pytest.raises(InvalidArgumentError, match=message):
            await store.set_config_sources(ds.dataset_id, 1, manifest)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        await store.set_config_sources("0" * 32, 1, {"x.py": a})
    assert await store.get_config_sources(ds.dataset_id) == {}
