"""basic-submit test script: writes its input, upper-cased, to its output."""
import sys

source, target = sys.argv[1], sys.argv[2]
with open(source) as inp, open(target, "w") as out:
    out.write(inp.read().upper())
print(f"{source} -> {target}")
