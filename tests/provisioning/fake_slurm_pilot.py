"""Stands in for `frazil pilot` inside real Slurm jobs (tests/provisioning/test_slurm.py):
writes what the job gave it to ``<token dir>/<FRAZIL_PROVIDER_JOB_ID>.json``, then sleeps
as many seconds as the submit directory's ``sleep`` file says (default 60)."""
import json
import os
import sys
import time
from pathlib import Path

args = sys.argv[1:]
token = Path(args[args.index("--token-file") + 1])
record = {"argv": args, "token": token.read_text().strip(), "cwd": os.getcwd(),
          "env": {k: v for k, v in os.environ.items() if k.startswith(("SLURM_", "FRAZIL_"))}}
(token.parent / f"{os.environ['FRAZIL_PROVIDER_JOB_ID']}.json").write_text(json.dumps(record))
seconds = float((token.parent.parent / "sleep").read_text()) if (token.parent.parent / "sleep").exists() else 60
time.sleep(seconds)
