"""What a claim reply tells the pilot about the data federation (docs/pilot-api.md)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=4)
def _read_ca(path: str) -> str:
    return Path(path).read_text(encoding="ascii")


def pelican_claim_fields(settings: Any) -> dict[str, Any]:
    """``osdf_federation`` always; ``pelican_ca`` (PEM) when an extra CA is configured.

    The CA is a public certificate, read once; an unreadable file is reported at
    startup (:func:`check_pelican_settings`), not on every claim.
    """
    fields: dict[str, Any] = {"osdf_federation": settings.osdf_federation}
    if settings.pelican_ca_file:
        try:
            fields["pelican_ca"] = _read_ca(settings.pelican_ca_file)
        except (OSError, UnicodeDecodeError):
            pass
    return fields


def check_pelican_settings(settings: Any) -> list[str]:
    """Problems with the federation settings, each one line (for the server's start)."""
    problems = []
    if not str(settings.osdf_federation).startswith("pelican://"):
        problems.append(f"osdf_federation must be a pelican:// URL, not {settings.osdf_federation!r}")
    if settings.pelican_ca_file:
        try:
            text = _read_ca(settings.pelican_ca_file)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"pelican_ca_file {settings.pelican_ca_file}: {exc}")
        else:
            if "BEGIN CERTIFICATE" not in text:
                problems.append(f"pelican_ca_file {settings.pelican_ca_file}: not a PEM certificate")
    return problems
