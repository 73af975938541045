"""Transfers through `frazil federation` (DESIGN.md §5 style): pelicanfs, as frazil's
osdf:// scheme uses it, beside plain HTTP (pycurl) to the same origin.

(a) one 100 MB object: upload and download, MB/s;
(b) 1,000 small (4 KiB) objects: downloads, files/s.

The federation runs as its own process; the client's CPU time (this process,
all threads, from ``resource.getrusage``) is reported per operation beside
the wall rates, with the load average. Median of ``--repeat`` runs.

    python -m benchmarks.transfer [--size-mb 100] [--files 1000] [--repeat 3]

prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pycurl

from common.transfer import HttpFiles
from common.transfer.pelican import PelicanFiles, pelican_url

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "/bench"


class CaHttpFiles(HttpFiles):
    """pycurl trusting the federation's CA (the origin speaks HTTPS)."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self.ca_file = ca_file

    def _handle(self, url: str) -> pycurl.Curl:
        curl = super()._handle(url)
        curl.setopt(pycurl.CAINFO, self.ca_file)
        return curl


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(run: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    wall, used = time.perf_counter(), cpu()
    run()
    return time.perf_counter() - wall, cpu() - used


def start_federation(root: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "federation", "--port", "0", "--root", str(root),
                             "--namespace", NAMESPACE], cwd=REPO, stdout=subprocess.PIPE, text=True)
    info: dict[str, str] = {}
    while len(info) < 7:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("frazil federation did not start")
        key, _, value = line.strip().partition(" ")
        info[key] = value
    return proc, info


def median_rate(samples: list[tuple[float, float]], amount: float, unit: str) -> dict[str, Any]:
    walls = [w for w, _ in samples]
    cpus = [c for _, c in samples]
    return {f"{unit}_per_s": round(amount / statistics.median(walls), 2),
            "wall_s": round(statistics.median(walls), 3), "client_cpu_s": round(statistics.median(cpus), 3),
            "runs": len(samples)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="frazil-bench-transfer-"))
    proc, info = start_federation(work / "root")
    try:
        pelican = PelicanFiles(federation=info["federation"], ca_file=info["ca-file"])
        curl = CaHttpFiles(info["ca-file"])
        origin = info["origin"]
        big = work / "big.bin"
        with open(big, "wb") as out:
            for _ in range(args.size_mb):
                out.write(os.urandom(1 << 20))
        result: dict[str, Any] = {"benchmark": "transfer", "size_mb": args.size_mb, "small_files": args.files,
                                  "load_average_before": os.getloadavg()}
        for name, client, url in (
                ("pelicanfs", pelican, f"osdf://{NAMESPACE}/big/{{}}.bin"),
                ("pycurl", curl, f"{origin}{NAMESPACE}/big/{{}}.bin")):
            ups = [measure(lambda i=i: client.upload(big, url.format(f"{name}{i}"))) for i in range(args.repeat)]
            downs = [measure(lambda i=i: client.download(url.format(f"{name}{i}"), work / "back.bin"))
                     for i in range(args.repeat)]
            result[f"{name}_100mb_upload"] = median_rate(ups, args.size_mb, "mb")
            result[f"{name}_100mb_download"] = median_rate(downs, args.size_mb, "mb")
        small = work / "root" / NAMESPACE.strip("/") / "small"
        small.mkdir(parents=True)
        for i in range(args.files):
            (small / f"f{i}.dat").write_bytes(os.urandom(4096))
        for name, client, url in (
                ("pelicanfs", pelican, f"osdf://{NAMESPACE}/small/f{{}}.dat"),
                ("pycurl", curl, f"{origin}{NAMESPACE}/small/f{{}}.dat")):
            def all_files(client=client, url=url) -> None:
                for i in range(args.files):
                    client.download(url.format(i), work / "small.dat")
            runs = [measure(all_files) for _ in range(args.repeat)]
            rate = median_rate(runs, args.files, "files")
            rate["client_cpu_ms_per_file"] = round(1000 * rate["client_cpu_s"] / args.files, 2)
            result[f"{name}_small_files_download"] = rate
        result["load_average_after"] = os.getloadavg()
        result["pelican_url_example"] = pelican_url(f"osdf://{NAMESPACE}/x", info["federation"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
