"""Provisioning by need (issue 14 item 4): queued work grouped by OS/container need and
batchsys group becomes HTCondor pilots that can serve each group, built into real
``htcondor2.Submit`` objects (the schedd is the bindings-shaped fake of test_htcondor)."""
from __future__ import annotations

from pathlib import Path

import classad2
import pytest

from common.batchsys import checked, group_of
from common.containers import DEFAULT_OS_IMAGES
from server.provisioning.demand import SiteConfig
from server.provisioning.htcondor import CondorOptions, CondorProvider
from server.provisioning.matchable import MatchableService, provider_capabilities
from server.provisioning.service import Provisioner
from server.store import open_store
from tests.provisioning.fake_schedd import FakeSchedd
from tests.store.helpers import queued_dataset

URL = "https://frazil.example.org:8080"
BATCHSYS = checked({"condor": {"+AccountingGroup": '"icecube.prod"', "requirements": 'TARGET.HAS_CVMFS =?= True'}})


def _condor(tmp_path: Path, schedd: FakeSchedd, bootstrap: str) -> CondorProvider:
    options = CondorOptions(server_url=URL, submit_dir=tmp_path / "condor", bootstrap=bootstrap,
                            os_images=dict(DEFAULT_OS_IMAGES), site_os={"": ["RHEL_9_x86_64"]})
    return CondorProvider(options=options, schedd_factory=lambda: schedd, mint_token=lambda: "secret-token")


def _value(submit, key: str):
    return classad2.ExprTree(submit[key]).eval()


@pytest.mark.parametrize("bootstrap", ["bundle", "container"])
async def test_container_os_and_batchsys_groups_become_their_own_pilots(tmp_path: Path, bootstrap: str):
    store = await open_store(f"sqlite:///{tmp_path}/frazil.db")
    try:
        await queued_dataset(store, 2)                                               # plain
        await queued_dataset(store, 3, requirements={"container": True})             # a task naming an image
        await queued_dataset(store, 1, requirements={"os": ["RHEL_7_x86_64"]})       # an OS with an image
        await queued_dataset(store, 1, requirements={"os": ["RHEL_9_x86_64"]})       # the site runs it
        await queued_dataset(store, 4, requirements={"batchsys": BATCHSYS})          # a batchsys group
        await queued_dataset(store, 1, requirements={"os": ["SL_6_x86_64"]})         # nothing serves it
        schedd = FakeSchedd()
        condor = _condor(tmp_path, schedd, bootstrap)
        sites = [SiteConfig("", max_idle=50, max_running=50, max_per_cycle=50, ramp_up=50)]
        sites[0].options["os"] = ["RHEL_9_x86_64"]
        caps = provider_capabilities("htcondor", sites, DEFAULT_OS_IMAGES)
        provisioner = Provisioner(store, condor, sites, min_hours=0, matchable=MatchableService(store, caps))
        await provisioner.step()
        by_need = {}
        for call in schedd.submits:
            submit = call.description
            by_need[(_value(submit, "MY.FrazilOS"), _value(submit, "MY.FrazilGroup"))] = (submit, len(call.itemdata))
        group = group_of(BATCHSYS)
        assert sorted(by_need) == sorted([("", ""), ("container", ""), ("RHEL_7_x86_64", ""),
                                          ("RHEL_9_x86_64", ""), ("", group)])
        assert provisioner.last_plan["unserved"] == 1  # SL_6: no image, no site runs it: nothing submitted

        plain, n = by_need[("", "")]
        assert n == 2 and "HAS_SINGULARITY" not in plain["requirements"] and "--group" not in plain["arguments"]
        native, _ = by_need[("RHEL_9_x86_64", "")]
        assert "HAS_SINGULARITY" not in native["requirements"]

        container, n = by_need[("container", "")]
        assert n == 3 and "(TARGET.HAS_SINGULARITY =?= True)" in container["requirements"]
        el7, _ = by_need[("RHEL_7_x86_64", "")]
        assert "(TARGET.HAS_SINGULARITY =?= True)" in el7["requirements"]
        if bootstrap == "container":  # the pilot (in pilot_image) runs the task in the EL7 image itself
            assert _value(el7, "MY.SingularityImage") == condor.options.image
            assert "--image-os" not in el7["arguments"]
        else:  # no runtime path of its own: the pilot itself starts in the EL7 image and says so
            assert _value(el7, "MY.SingularityImage") == DEFAULT_OS_IMAGES["RHEL_7_x86_64"]
            assert "--image-os RHEL_7_x86_64" in el7["arguments"]
            assert "MY.SingularityImage" not in container.keys()

        grouped, n = by_need[("", group)]
        assert n == 4
        assert _value(grouped, "MY.AccountingGroup") == "icecube.prod"
        assert "(TARGET.HAS_CVMFS =?= True)" in grouped["requirements"]
        assert f"--group {group}" in grouped["arguments"]
        # every description went through htcondor2.Submit and the schedd took it as one
        assert all(type(call.description).__name__ == "Submit" for call in schedd.submits)

        # a fresh provider (restart, another replica) finds the pilots again, group and OS included,
        # so the next round counts them as cover and submits nothing new
        fresh = _condor(tmp_path, schedd, bootstrap)
        await Provisioner(store, fresh, sites, min_hours=0, matchable=MatchableService(store, caps)).step()
        assert len(schedd.submits) == 5
        assert {(j.shape.os, j.shape.group) for j in fresh.jobs()} >= {((), group), (("container",), "")}
    finally:
        await store.close()
