"""Issue 16 item 3: the provider submits no pilots to a quarantined site, and
does again once the quarantine is lifted (a real local provider, real store)."""
from __future__ import annotations

from pathlib import Path

from common.resources import Resources
from server.provisioning.demand import SiteConfig
from server.provisioning.local import LocalProvider
from server.provisioning.service import Provisioner
from server.store import open_store
from tests.store.helpers import queued_dataset


async def test_no_pilots_for_a_quarantined_site(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/frazil.db")
    # the pilots it starts find no server on this port and leave; the test only counts submissions
    provider = LocalProvider(server_url="http://127.0.0.1:9", slots=Resources(cpu=1, memory=1.0, disk=1.0),
                             directory=tmp_path / "pilots", mint_token=lambda: "", site="local",
                             command=["/bin/sleep", "30"])
    try:
        await queued_dataset(store, 3, requirements={"cpu": 1, "memory": 0.1})
        provisioner = Provisioner(store, provider, [SiteConfig(name="local")], min_hours=0.0)
        made, _ = await store.add_quarantine("site", "local", "failed 30 tasks", "9999-01-01T00:00:00.000000")
        await provisioner.step()
        assert provider.counts().submitted == 0 and provisioner.last_plan["submitted"] == {}
        await store.lift_quarantine(made.quarantine_id, "root")
        provisioner.quarantines.forget()
        await provisioner.step()
        assert provider.counts().submitted >= 1
    finally:
        await provider.close()
        await store.close()
