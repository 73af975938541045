"""The module of the Slurm end-to-end datasets.

``--seconds N``: work for N seconds. ``--first_hangs 1``: the first attempt
of the task sleeps far longer than any test waits; later attempts finish at
once. Modules run sandboxed (nothing writable outside their work dir), so
the attempt number is read from the work dir's name (``..._<attempt>``).
"""
import argparse
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--job", type=int, required=True)
parser.add_argument("--seconds", type=float, default=0.0)
parser.add_argument("--first_hangs", default="")
args = parser.parse_args()
attempt = os.getcwd().rsplit("_", 1)[-1]
if args.first_hangs and attempt == "1":
    print(f"job {args.job}: first attempt, hanging", flush=True)
    time.sleep(3600)
time.sleep(args.seconds)
print(f"job {args.job}: done (attempt {attempt})")
