"""Provisioning settings, provider construction and GET /providers."""
from __future__ import annotations

import dataclasses

import aiohttp
import pytest

from server.auth import TokenAuthority
from server.provisioning.htcondor import CondorProvider
from server.provisioning.local import LocalProvider
from server.provisioning.slurm import SlurmProvider
from server.provisioning.service import build_provider
from server.provisioning.sites import sites_from_settings
from server.settings import Settings, load_settings
from tests.server.conftest import RunningServer


def test_sites_default_and_per_site_tables():
    settings = Settings(site_max_idle=3)
    [site] = sites_from_settings(settings, "local")
    assert (site.name, site.max_idle, site.max_running) == ("local", 3, 100)
    settings = Settings(pilot_sites={"CHTC": {"max_idle": 20, "requirements": 'GLIDEIN_Site == "CHTC"',
                                              "submit_lines": ['+AccountingGroup = "prod"']},
                                     "DESY": {}})
    chtc, desy = sites_from_settings(settings, "")
    assert chtc.max_idle == 20 and chtc.options["submit_lines"] == ['+AccountingGroup = "prod"']
    assert desy.max_idle == 10 and desy.options["requirements"] == ""


@pytest.mark.parametrize("tables, message", [
    ({"CH TC": {}}, "site name 'CH TC'"),
    ({"CHTC": {"max_idel": 3}}, "unknown setting(s) max_idel"),
    ({"CHTC": {"max_idle": -1}}, "max_idle must be a whole number >= 0"),
    ({"CHTC": {"submit_lines": "x = 1"}}, "expected a list of one-line strings"),
    ({"CHTC": {"requirements": "a\nb"}}, "one-line ClassAd expression"),
    ({"CHTC": {"os": "RHEL_7_x86_64"}}, "pilot_sites.CHTC.os: expected a list of OS_ARCH names"),
    ({"CHTC": {"largest_slot": {"cpus": 4}}}, "pilot_sites.CHTC.largest_slot: expected a table of cpu, gpu"),
    ({"CHTC": {"largest_slot": {"memory": -1}}}, "largest_slot: expected a table"),
])
def test_bad_site_tables_are_clear_errors(tables, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sites_from_settings(Settings(pilot_sites=tables), "")


def test_pilot_sites_from_a_toml_file(tmp_path):
    path = tmp_path / "server.toml"
    path.write_text('provider = "htcondor"\npilot_bootstrap = "bundle"\n'
                    '[pilot_sites.CHTC]\nmax_running = 500\n')
    settings = load_settings(str(path), environ={})
    assert settings.pilot_sites == {"CHTC": {"max_running": 500}}
    [site] = sites_from_settings(settings, "")
    assert site.max_running == 500


def test_providers_built_from_settings(tmp_path):
    tokens = TokenAuthority("k" * 64)
    local, sites, hours = build_provider(Settings(data_dir=str(tmp_path), local_slots="cpus=3,memory=2GB"), tokens)
    assert isinstance(local, LocalProvider) and local.slots.cpu == 3 and [s.name for s in sites] == ["local"]
    assert hours == 24.0
    settings = Settings(data_dir=str(tmp_path), provider="htcondor", pilot_bootstrap="shared",
                        pilot_command="/cvmfs/icecube.opensciencegrid.org/frazil/bin/frazil",
                        pilot_sites={"CHTC": {"requirements": 'TARGET.GLIDEIN_Site =?= "CHTC"'}})
    condor, sites, _ = build_provider(settings, tokens)
    assert isinstance(condor, CondorProvider)
    assert condor.options.command.startswith("/cvmfs/") and condor.options.bootstrap == "shared"
    assert condor.options.site_requirements == {"CHTC": 'TARGET.GLIDEIN_Site =?= "CHTC"'}
    token = condor.mint_token()
    assert tokens.identify(token).role == "pilot"
    with pytest.raises(ValueError, match="pilot_bootstrap must be one of"):
        build_provider(dataclasses.replace(settings, pilot_bootstrap="magic"), tokens)
    with pytest.raises(ValueError, match="does not exist: build it with `make pilot-bundle`"):
        build_provider(dataclasses.replace(settings, pilot_bootstrap="bundle",
                                       pilot_bundle=str(tmp_path / "nope.pyz")), tokens)
    bundle = tmp_path / "frazil-pilot.pyz"
    bundle.write_bytes(b"#!/usr/bin/env python3\n")
    condor, _, _ = build_provider(dataclasses.replace(settings, pilot_bootstrap="bundle",
                                                      pilot_bundle=str(bundle)), tokens)
    assert condor.options.bundle == str(bundle)
    with pytest.raises(ValueError, match="local_slots: cannot read"):
        build_provider(Settings(data_dir=str(tmp_path), local_slots="cores=2"), tokens)


def test_the_slurm_provider_needs_no_settings_and_checks_per_site_ones(tmp_path):
    tokens = TokenAuthority("k" * 64)
    slurm, sites, _ = build_provider(Settings(data_dir=str(tmp_path), provider="slurm", port=9123), tokens)
    assert isinstance(slurm, SlurmProvider) and [s.name for s in sites] == [""]
    options = slurm.options
    assert options.bootstrap == "shared" and options.server_url == "http://127.0.0.1:9123"
    assert options.command[1:] == ["-m", "server.cli", "pilot"] and options.submit_dir == (tmp_path / "slurm").resolve()
    assert options.sites[""].partition == "" and tokens.identify(slurm.mint_token()).role == "pilot"
    listening = Settings(data_dir=str(tmp_path), provider="slurm", host="0.0.0.0", slurm_account="icecube",
                         pilot_sites={"gpu": {"partition": "gpu", "gres": "gpu:a100", "time_limit": 120}})
    slurm, _, _ = build_provider(listening, tokens)
    assert "0.0.0.0" not in slurm.options.server_url  # compute nodes get this host's name
    gpu = slurm.options.sites["gpu"]
    assert (gpu.partition, gpu.account, gpu.gres, gpu.time_limit) == ("gpu", "icecube", "gpu:a100", 120)
    with pytest.raises(ValueError, match=r"pilot_sites.gpu: sbatch_lines: 'x' is not one sbatch option"):
        build_provider(dataclasses.replace(listening, pilot_sites={"gpu": {"sbatch_lines": ["x"]}}), tokens)
    with pytest.raises(ValueError, match="pilot_bootstrap for Slurm must be shared or bundle"):
        build_provider(dataclasses.replace(listening, pilot_bootstrap="container"), tokens)


async def test_get_providers_is_for_admins(server: RunningServer):
    admin = {"Authorization": f"Bearer {server.token('root', role='admin')}"}
    user = {"Authorization": f"Bearer {server.token('alice')}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/providers", headers=admin) as reply:
            assert reply.status == 200
            assert await reply.json() == {"configured": "none", "providers": {}, "last_round": {},
                                          "last_error": "", "registered": {}}
        async with session.get(server.url + "/providers", headers=user) as reply:
            assert reply.status == 403
        async with session.get(server.url + "/api/openapi.json") as reply:
            assert "/providers" in (await reply.json())["paths"]
