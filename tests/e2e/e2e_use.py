"""Second task: reads what the first task handed over. Job 7 uses too much
memory on its first attempt (a resource failure that escalates its memory),
job 13 fails like a broken physics module (a physics failure: no retry).
Modules run sandboxed (nothing writable outside their work dir), so the
attempt number is read from the work dir's name (``..._<attempt>``)."""
import argparse
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--job", type=int, required=True)
parser.add_argument("--markers", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

first = open("gen.txt").read()
second = open("gen2.txt").read()
if f"job {args.job}\n" not in first or f"job {args.job}\n" not in second:
    sys.exit(f"wrong hand-off: {first!r} {second[:40]!r}")
if args.job == 7:
    if os.getcwd().rsplit("_", 1)[-1] == "1":
        hog = []
        for _ in range(40):  # 1.2 GB in 30 MB steps, well over the 0.5 GB slot
            hog.append(bytearray(30_000_000))
            time.sleep(0.05)
        time.sleep(5)
        sys.exit("the monitor should have killed this attempt")
if args.job == 13:
    print("Traceback (most recent call last):\n  File \"e2e_use.py\", line 1\n"
          "ValueError: negative energy in event 42", file=sys.stderr)
    sys.exit(1)
with open(args.out, "w") as out:
    out.write(f"job {args.job}: {len(first) + len(second)} bytes handed over\n")
