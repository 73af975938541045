"""First task of the end-to-end datasets: writes two job_temp files for the second task."""
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--job", type=int, required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--out2", required=True)
args = parser.parse_args()
with open(args.out, "w") as out:
    out.write(f"scratch store file of job {args.job}\n")
with open(args.out2, "w") as out:
    out.write(f"second file of job {args.job}\n" + "x" * 1000 + "\n")
print(f"job {args.job}: wrote {args.out} and {args.out2}")
