"""A task's osdf:// output through the runner, with the attempt's token from the claim reply."""
from __future__ import annotations

import hashlib
from pathlib import Path

from common.plan.records import DataTransfer
from pilot.storage import pelican_schemes
from tests.federation.conftest import NAMESPACE
from tests.pilot.runner_plans import PY, module, plan, run, tray


def _task(url: str):
    write = "open('out.i3', 'wb').write(b'frazil' * 1000)"
    return plan([tray([module("m", [PY, "-c", write])],
                      data=[DataTransfer(url=url, local="out.i3", movement="output")])])


def _claim(secured, scope: str) -> dict:
    return {"osdf_federation": secured.federation.url, "storage_token": secured.issuer.mint(scope),
            "pelican_ca": Path(secured.federation.ca_file).read_text()}


async def test_output_written_with_the_claims_token(secured, tmp_path):
    url = f"osdf://{NAMESPACE}/data/sim/7/out.i3"
    doc = _claim(secured, "storage.modify:/data/sim/7 storage.read:/data/sim/7")
    result = await run(_task(url), tmp_path, schemes=pelican_schemes(doc))
    assert result.status == "complete", result.summary()
    stored = secured.federation.root / "icecube/wipac/data/sim/7/out.i3"
    assert hashlib.sha512(stored.read_bytes()).hexdigest() == hashlib.sha512(b"frazil" * 1000).hexdigest()
    stdlog = Path(result.stdlog).read_text()
    assert doc["storage_token"] not in stdlog


async def test_missing_scope_is_a_non_physics_credentials_failure(secured, tmp_path):
    url = f"osdf://{NAMESPACE}/data/sim/8/out.i3"
    doc = _claim(secured, "storage.read:/data/sim")
    result = await run(_task(url), tmp_path, schemes=pelican_schemes(doc))
    assert (result.status, result.failure_class, result.kind) == ("reset", "non-physics", "credentials")
    assert "storage.modify" in result.reason
    assert not (secured.federation.root / "icecube/wipac/data/sim/8").exists()
    assert doc["storage_token"] not in Path(result.stdlog).read_text()


def test_the_token_goes_to_the_configured_federation_only():
    files = pelican_schemes({"osdf_federation": "pelican://127.0.0.1:1", "storage_token": "t0ken"})["pelican"]
    assert files._fs("pelican://127.0.0.1:1/ns/f").http_file_system.kwargs["headers"] == \
        {"Authorization": "Bearer t0ken"}
    assert files._fs("pelican://elsewhere.example:8443/ns/f").http_file_system.kwargs["headers"] == {}
