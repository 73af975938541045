"""Demo module that fails once like a worker node with a broken CVMFS mount,
then succeeds: the first attempt finds no marker file, creates it and exits
with a CVMFS client error (a non-physics failure, so frazil retries the
task); the retry finds the marker and works."""
import argparse
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--marker", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

if not os.path.exists(args.marker):
    os.makedirs(os.path.dirname(os.path.abspath(args.marker)), exist_ok=True)
    open(args.marker, "w").close()
    print("cvmfs2: failed to mount /cvmfs/icecube.opensciencegrid.org (demo: first attempt)", file=sys.stderr)
    sys.exit(1)
with open(args.out, "w") as out:
    out.write("second attempt worked\n")
print("the retry worked")
