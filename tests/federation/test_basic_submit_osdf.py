"""IceProd's basic_submit call sequence with outputs on osdf:///, against `frazil federation`
with a token issuer: the attempt's token comes in the claim reply, narrowed to the job's
paths by token exchange, and the outputs land in the origin with the right sha512."""
from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
import requests

from tests.e2e.test_basic_submit_rest import run_basic_submit
from tests.e2e.test_end_to_end import Frazil
from tests.federation.test_federation_cli import _start, _stop

pytestmark = pytest.mark.slow


async def test_basic_submit_outputs_on_osdf_with_narrowed_tokens(tmp_path: Path, issuer) -> None:
    fed, info = await asyncio.to_thread(_start, tmp_path / "fed", "--namespace", "/icecube/wipac",
                                        "--issuer", issuer.url)
    frazil = Frazil(tmp_path / "data", osdf_federation=info["federation"], pelican_ca_file=info["ca-file"],
                    max_retries="1")
    lines = []
    for i in range(2):
        (tmp_path / f"in{i}.txt").write_text(f"event data {i}\n")
        lines.append(f"file://{tmp_path}/in{i}.txt osdf:///icecube/wipac/data/sim/frazil-test/out{i}.txt")
    files = tmp_path / "files.txt"
    files.write_text("\n".join(lines) + "\n")
    access = issuer.mint("storage.read:/data storage.modify:/data/sim", subject="operator", lifetime=3600)
    refresh = issuer.refresh_token("storage.read:/data storage.modify:/data/sim", subject="operator")
    try:
        await asyncio.to_thread(frazil.start)
        reply = await asyncio.to_thread(
            requests.post, f"{frazil.url}/users/operator/credentials", timeout=30,
            headers={"Authorization": f"Bearer {frazil.admin}"},
            json={"url": "osdf:///icecube/wipac", "type": "oauth", "access_token": access, "refresh_token": refresh})
        assert reply.status_code == 201, reply.text
        await asyncio.to_thread(run_basic_submit, frazil, files, seconds=120)
    finally:
        await asyncio.to_thread(frazil.stop)
        err = await asyncio.to_thread(_stop, fed)
    origin = tmp_path / "fed" / "root" / "icecube/wipac/data/sim/frazil-test"
    for i in range(2):
        assert hashlib.sha512((origin / f"out{i}.txt").read_bytes()).hexdigest() == \
            hashlib.sha512(f"EVENT DATA {i}\n".encode()).hexdigest()
    # each attempt's token was narrowed to its job's directory at the issuer
    assert issuer.exchanges >= 1
    # no secret in any log or the database
    texts = [p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file() and p.suffix != ".key"]
    for secret in (access, refresh):
        assert not any(secret.encode() in blob for blob in texts), "a secret was written in clear"
        assert secret not in err
