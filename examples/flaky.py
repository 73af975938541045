"""Demo module that fails once like a worker node with a broken CVMFS mount,
then succeeds: the first attempt exits with a CVMFS client error (a
non-physics failure, so frazil retries the task); the retry works.

Under a pilot the attempt number ends the work dir's name (``..._1``):
modules run sandboxed and cannot leave a marker outside their work dir.
Elsewhere (``frazil run``) a marker file tells the first run from the next."""
import argparse
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--marker", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

suffix = os.getcwd().rsplit("_", 1)[-1]
if suffix.isdigit():
    first = suffix == "1"
else:
    first = not os.path.exists(args.marker)
    if first:
        os.makedirs(os.path.dirname(os.path.abspath(args.marker)), exist_ok=True)
        open(args.marker, "w").close()
if first:
    print("cvmfs2: failed to mount /cvmfs/icecube.opensciencegrid.org (demo: first attempt)", file=sys.stderr)
    sys.exit(1)
with open(args.out, "w") as out:
    out.write("second attempt worked\n")
print("the retry worked")
