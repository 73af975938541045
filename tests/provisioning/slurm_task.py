"""The module of the Slurm end-to-end datasets.

``--seconds N``: work for N seconds. ``--first_hangs DIR``: the first attempt
of each job (no ``DIR/<job>`` marker yet) writes the marker with its process
id and sleeps far longer than any test waits; later attempts finish at once.
"""
import argparse
import os
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--job", type=int, required=True)
parser.add_argument("--seconds", type=float, default=0.0)
parser.add_argument("--first_hangs", default="")
args = parser.parse_args()
if args.first_hangs:
    marker = Path(args.first_hangs) / str(args.job)
    if not marker.exists():
        marker.write_text(f"{os.getpid()} {os.environ.get('SLURM_JOB_ID', '')}\n")
        time.sleep(3600)
time.sleep(args.seconds)
print(f"job {args.job}: done on Slurm job {os.environ.get('SLURM_JOB_ID', '?')}")
