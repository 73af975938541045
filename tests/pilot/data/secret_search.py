"""A hostile module: looks everywhere it can for credentials and prints what it found.

It does not know the secrets (they are made after it was submitted); it
collects every string shaped like one (a JWT, a long url-safe key such as
the server's signing key) from every file it can read, every process's
environment and command line it can see in /proc, and its own environment,
and prints their sha256 with where each was found, for the test to compare
with the real secrets. A canary JWT written into its own work dir first must
be found, so a search that sees nothing proves nothing.
"""
import hashlib
import json
import os
import re
import sys
import time

CANDIDATES = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|[A-Za-z0-9_-]{80,}")
SKIP_DIRS = {"/proc", "/sys", "/dev", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/boot",
             "/var/lib/dpkg", "/var/lib/apt", "/var/cache", "/snap"}
SKIP_NAMES = {".venv", ".git", "__pycache__", "node_modules"}
MAX_BYTES = 1 << 20
found: dict[str, str] = {}
stats = {"files": 0, "dirs": 0, "procs": 0, "unreadable": 0}


def scan(data: bytes, where: str) -> None:
    for match in CANDIDATES.finditer(data):
        for text in {match.group(0), match.group(0).rstrip(b"\n")}:
            found.setdefault(hashlib.sha256(text).hexdigest(), where)


def read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_BYTES)
    except OSError:
        stats["unreadable"] += 1
        return None


canary = "eyJhbGciOiJIUzUxMiJ9.eyJjYW5hcnkiOiAidGVzdCJ9.Y2FuYXJ5LXNpZ25hdHVyZS1vZi10aGUtdGVzdA"
with open("canary.txt", "w") as out:
    out.write(canary + "\n")
started = time.monotonic()
for root, dirs, files in os.walk("/", followlinks=False):
    if root in SKIP_DIRS:
        dirs[:] = []
        continue
    dirs[:] = [d for d in dirs if d not in SKIP_NAMES and os.path.join(root, d) not in SKIP_DIRS]
    stats["dirs"] += 1
    for name in files:
        path = os.path.join(root, name)
        try:
            if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > 50 * MAX_BYTES:
                continue
        except OSError:
            continue
        data = read(path)
        if data is not None:
            stats["files"] += 1
            scan(data, path)
for pid in os.listdir("/proc"):
    if pid.isdigit():
        stats["procs"] += 1
        for part in ("environ", "cmdline"):
            data = read(f"/proc/{pid}/{part}")
            if data:
                scan(data, f"/proc/{pid}/{part}")
for key, value in os.environ.items():
    scan(f"{key}={value}".encode(), f"environment {key}")
print(json.dumps({"found": found, "stats": stats, "seconds": round(time.monotonic() - started, 1),
                  "canary": hashlib.sha256(canary.encode()).hexdigest(),
                  "environment": sorted(os.environ), "uid": os.getuid(),
                  "db_readable": [p for p in sys.argv[1:] if (read(p) or b"").startswith(b"SQLite format 3")]}))
