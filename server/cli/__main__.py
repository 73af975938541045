"""``python -m server.cli`` is the ``frazil`` command (used by tests without installing)."""
import sys

from server.cli import main

sys.exit(main())
