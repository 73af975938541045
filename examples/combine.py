"""Demo module: combine the generated event files into one JSON summary."""
import argparse
import json
import statistics

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("inputs", nargs="+")
args = parser.parse_args()

values = []
for name in args.inputs:
    with open(name) as f:
        values.extend(float(line) for line in f if line.strip())
summary = {"files": args.inputs, "events": len(values), "mean": statistics.fmean(values)}
with open(args.out, "w") as out:
    json.dump(summary, out, indent=1)
print(json.dumps(summary))
