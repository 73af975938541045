"""Demo module in the tutorial's NuGen style: takes the same kind of
arguments as simprod-scripts' nugen.py and writes a small 'event file'."""
import argparse
import json
import random

parser = argparse.ArgumentParser()
parser.add_argument("--nevents", type=int, required=True)
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--gamma", type=float, required=True)
parser.add_argument("--FromEnergy", type=float, required=True)
parser.add_argument("--ToEnergy", type=float, required=True)
parser.add_argument("--flavor", required=True)
parser.add_argument("--interaction", required=True)
parser.add_argument("--run", type=int, required=True)
parser.add_argument("--outputfile", required=True)
args = parser.parse_args()

rng = random.Random(args.seed)
# energies from an E^-gamma power law between FromEnergy and ToEnergy
a, b, g = args.FromEnergy, args.ToEnergy, 1.0 - args.gamma
energies = [((b ** g - a ** g) * rng.random() + a ** g) ** (1 / g) for _ in range(args.nevents)]
with open(args.outputfile, "w") as out:
    json.dump({"run": args.run, "seed": args.seed, "flavor": args.flavor, "interaction": args.interaction,
               "events": len(energies), "mean_energy": sum(energies) / len(energies)}, out)
print(f"run {args.run}: {args.nevents} {args.flavor} {args.interaction} events, seed {args.seed} -> {args.outputfile}")
