"""The real test server of tests/server (its fixtures, reused for GET /providers)."""
from tests.server.conftest import server, server_settings  # noqa: F401  (pytest fixtures)
