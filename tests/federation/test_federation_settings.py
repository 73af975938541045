"""The server's federation settings and what the claim reply says of them."""
from __future__ import annotations

from server.federation.claim import check_pelican_settings, pelican_claim_fields
from server.settings import Settings, load_settings


def test_osdf_federation_from_the_environment_and_the_claim_fields(tmp_path):
    settings = load_settings(None, environ={"FRAZIL_OSDF_FEDERATION": "pelican://127.0.0.1:8443"})
    assert settings.osdf_federation == "pelican://127.0.0.1:8443"
    assert pelican_claim_fields(settings) == {"osdf_federation": "pelican://127.0.0.1:8443"}
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    with_ca = Settings(pelican_ca_file=str(ca))
    assert check_pelican_settings(with_ca) == []
    assert pelican_claim_fields(with_ca)["pelican_ca"].startswith("-----BEGIN CERTIFICATE")


def test_bad_federation_settings_are_named(tmp_path):
    bad = Settings(osdf_federation="https://osg-htc.org", pelican_ca_file=str(tmp_path / "missing.pem"))
    problems = check_pelican_settings(bad)
    assert any("osdf_federation must be a pelican:// URL" in p for p in problems)
    assert any("missing.pem" in p for p in problems)
    (tmp_path / "junk.pem").write_text("hello")
    assert "not a PEM certificate" in check_pelican_settings(Settings(pelican_ca_file=str(tmp_path / "junk.pem")))[0]
