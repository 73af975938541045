"""The disk's fsync ceiling (issue 11 item 10): how many "append 4 KiB, then
fsync" rounds per second one thread gets on the disk of a folder (default:
./frazil-data, the server's data dir; the SQLite WAL lives there).

With ``durable_commits`` (SQLite ``synchronous=FULL``) every group commit is
one such round, so this rate bounds the server's commits per second; group
commit folds many claims and reports into one commit, which is how the
claim path can exceed it.

    python -m benchmarks.fsync [--dir ./frazil-data] [--seconds 5] [--call fdatasync|fsync]

Prints one JSON line (median of ``--runs`` runs).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any


def one_run(folder: str, seconds: float, call: str) -> dict[str, Any]:
    sync = os.fdatasync if call == "fdatasync" else os.fsync
    block = os.urandom(4096)
    latencies: list[float] = []
    with tempfile.NamedTemporaryFile(dir=folder, prefix="fsync-bench-") as handle:
        fd = handle.fileno()
        end = time.perf_counter() + seconds
        cpu0 = time.process_time()
        while time.perf_counter() < end:
            began = time.perf_counter()
            os.write(fd, block)
            sync(fd)
            latencies.append(time.perf_counter() - began)
        cpu = time.process_time() - cpu0
    latencies.sort()
    total = sum(latencies)
    return {"rounds_per_s": round(len(latencies) / total, 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 3),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
            "cpu_us_per_round": round(1e6 * cpu / len(latencies), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="./frazil-data", help="a folder on the disk to measure")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--call", choices=["fdatasync", "fsync"], default="fdatasync",
                        help="SQLite uses fdatasync on Linux")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.runs < 1:
        parser.error("--seconds must be > 0 and --runs >= 1")
    os.makedirs(args.dir, exist_ok=True)
    runs = [one_run(args.dir, args.seconds, args.call) for _ in range(args.runs)]
    stat = os.statvfs(args.dir)
    result = {"benchmark": "fsync", "dir": os.path.abspath(args.dir), "call": args.call,
              "filesystem_free_gb": round(stat.f_bavail * stat.f_frsize / 2**30, 1),
              "loadavg": [round(x, 2) for x in os.getloadavg()], "runs": runs,
              **{key: statistics.median(r[key] for r in runs) for key in runs[0]}}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
