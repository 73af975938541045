"""Demo module: write N pseudo-random 'events' drawn from a seeded generator."""
import argparse
import random

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--events", type=int, required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

rng = random.Random(args.seed)
with open(args.out, "w") as out:
    for _ in range(args.events):
        out.write(f"{rng.expovariate(1.0):.6f}\n")
print(f"wrote {args.events} events with seed {args.seed} to {args.out}")
