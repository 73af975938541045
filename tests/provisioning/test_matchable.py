"""No silent starvation (issue 14.3): queued classes nothing can run are named, with why,
and the demand loop neither counts them as covered nor submits pilots for them."""
from __future__ import annotations

from pathlib import Path

from common.containers import CONTAINER_NEED, DEFAULT_OS_IMAGES
from common.resources import Resources
from server.provisioning.demand import QueuedClass, SiteConfig, plan
from server.provisioning.matchable import (
    Capability, MatchableService, provider_capabilities, reason_for, site_serves,
)
from server.settings import Settings
from server.provisioning.sites import sites_from_settings
from server.store import NewPilot, open_store
from tests.store.helpers import queued_dataset


def qc(*, cpu=1, gpu=0, memory=1.0, disk=1.0, site="", os=(), queued=1) -> QueuedClass:
    return QueuedClass(cpu=cpu, gpu=gpu, memory=memory, disk=disk, time=1.0, site=site, os=tuple(os),
                       queued=queued)


def slot(cpu=8, gpu=0, memory=16.0, disk=100.0) -> Resources:
    return Resources(cpu=cpu, gpu=gpu, memory=memory, disk=disk, time=0)


DEBIAN = Capability("pilot p1", "", slot(), frozenset({"DEBIAN_12_x86_64", CONTAINER_NEED}))


def test_each_reason_names_what_nothing_has():
    assert reason_for(qc(), []) == "no pilot is registered and no provider is configured"
    assert reason_for(qc(), [DEBIAN]) == ""
    assert reason_for(qc(os=["DEBIAN_12_x86_64"]), [DEBIAN]) == ""
    assert reason_for(qc(os=[CONTAINER_NEED]), [DEBIAN]) == ""
    el7 = reason_for(qc(os=["RHEL_7_x86_64"]), [DEBIAN])
    assert el7.startswith("needs OS RHEL_7_x86_64: no registered pilot (and no provider is configured) serves it")
    bare = Capability("pilot p2", "", slot(), frozenset({"DEBIAN_12_x86_64"}))
    assert reason_for(qc(os=[CONTAINER_NEED]), [bare]).startswith("needs a container runtime")
    assert reason_for(qc(gpu=1), [DEBIAN]) == "needs 1 GPU(s): no registered pilot (and no provider is configured) has them"
    big = reason_for(qc(memory=64), [DEBIAN])
    assert big.startswith("needs cpu 1, memory 64 GB, disk 1 GB: above every slot (largest: cpu 8, memory 16 GB")
    assert reason_for(qc(site="CHTC"), [DEBIAN]).startswith("needs site 'CHTC'")
    # the class's smallest need decides: one task of it fits
    assert reason_for(qc(memory=32), [DEBIAN], Resources(memory=12, time=1)) == ""


def test_provider_sites_serve_imaged_oses_their_own_and_containers():
    sites = sites_from_settings(Settings(pilot_sites={
        "CHTC": {"os": ["RHEL_6_x86_64"], "largest_slot": {"cpu": 16, "memory": 64, "gpu": 0}},
        "GPU": {"largest_slot": {"gpu": 4}}}), "")
    images = {**DEFAULT_OS_IMAGES}
    images.pop("RHEL_7_x86_64")
    caps = provider_capabilities("htcondor", sites, images)
    assert reason_for(qc(os=["RHEL_6_x86_64"]), caps) == ""   # CHTC lists it
    assert reason_for(qc(os=["RHEL_9_x86_64"]), caps) == ""   # an os_images image
    assert reason_for(qc(os=[CONTAINER_NEED]), caps) == ""
    assert "no registered pilot and no provider site serves it" in reason_for(qc(os=["RHEL_7_x86_64"]), caps)
    assert reason_for(qc(gpu=2), caps) == ""
    assert reason_for(qc(gpu=8), caps).startswith("needs 8 GPU(s)")
    # an unknown slot size (no largest_slot): the batch system decides, never unmatchable by size
    assert reason_for(qc(memory=500), provider_capabilities("htcondor", sites_from_settings(Settings(), ""), images)) == ""


def test_demand_leaves_out_what_no_site_serves_and_routes_the_rest():
    sites = sites_from_settings(Settings(pilot_sites={
        "EL7": {"os": ["RHEL_7_x86_64"], "largest_slot": {"cpu": 8, "memory": 16}},
        "BIG": {"largest_slot": {"cpu": 64, "memory": 256}}}), "")
    for site in sites:
        site.max_idle = site.max_running = site.max_per_cycle = site.ramp_up = 100
    serves = site_serves(provider_capabilities("htcondor", sites, {}))
    el7, big, nowhere = qc(os=["RHEL_7_x86_64"], queued=2), qc(memory=100, queued=1), qc(os=["SL_6_x86_64"], queued=5)
    result = plan([el7, big, nowhere], sites, [], [], now=0, serves=serves)
    assert result.unserved == [nowhere]
    submitted = {shape.site: (shape.os, n) for shape, n in result.submit}
    assert submitted == {"EL7": (("RHEL_7_x86_64",), 2), "BIG": ((), 1)}
    # without the check the unservable class was "covered" by submitting pilots forever
    assert sum(n for _, n in plan([nowhere], sites, [], [], now=0).submit) == 5


async def test_the_service_marks_a_class_until_a_fitting_pilot_registers(tmp_path: Path):
    store = await open_store(f"sqlite:///{tmp_path}/frazil.db")
    try:
        ds, _ = await queued_dataset(store, 2, requirements={"os": ["RHEL_7_x86_64"]})
        await queued_dataset(store, 1)
        await store.register_pilot(NewPilot(resources={"cpu": 2, "memory": 4, "disk": 10, "time": 10},
                                            os=["DEBIAN_12_x86_64", CONTAINER_NEED]))
        service = MatchableService(store, [])
        await service.step()
        [entry] = service.snapshot.for_dataset(ds.dataset_id)
        assert entry["tasks"] == 2 and entry["os"] == ["RHEL_7_x86_64"]
        assert entry["reason"].startswith("needs OS RHEL_7_x86_64: no registered pilot")
        assert [u["tasks"] for u in service.snapshot.summary()] == [2]
        # an unchanged class is not counted again; a changed one is
        calls = []
        counting = store.queued_by_dataset

        async def spy(keys):
            calls.append(list(keys))
            return await counting(keys)
        store.queued_by_dataset = spy
        await service.step()
        assert calls == [] and service.snapshot.for_dataset(ds.dataset_id) == [entry]
        more, _ = await queued_dataset(store, 1, requirements={"os": ["RHEL_7_x86_64"]})
        await service.step()
        assert len(calls) == 1 and service.snapshot.for_dataset(more.dataset_id)[0]["tasks"] == 1
        assert service.snapshot.for_dataset(ds.dataset_id)[0]["tasks"] == 2
        await store.register_pilot(NewPilot(resources={"cpu": 1, "memory": 1, "disk": 1, "time": 10},
                                            os=["RHEL_7_x86_64"]))
        await service.step()
        assert service.snapshot.for_dataset(ds.dataset_id) == [] and service.snapshot.summary() == []
    finally:
        await store.close()
