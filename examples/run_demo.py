#!/usr/bin/env python3
"""``make run``: a complete frazil installation on this machine, with work to look at.

Starts ``frazil server`` (SQLite store in ./frazil-data, the local pilot
provider, or with ``--provider slurm`` pilots started by the Slurm this
machine submits to), mints an admin token, submits the example datasets, shows their
progress until they finish, prints the website address and the token, and
keeps serving until Ctrl-C.

The examples show, between them:
  local-demo.json   two tasks per job, a tray iterated twice, job_temp files handed
                    from the first task to the second, macros of the tutorial's kind
  nugen-local.json  the tutorial's NuGen steering block ($eval, $sprintf, nested
                    $steering, per-iteration values) with a local stand-in for nugen.py
  retry-demo.json   a task that fails once with a CVMFS error (non-physics) and
                    succeeds on the automatic retry
  osdf-demo.json    outputs on osdf:///icecube/wipac/... written through a local Pelican
                    federation (``frazil federation``, public namespace, files under
                    ./frazil-data/osdf) with pelicanfs, and read back by a second task

Module ``src`` paths in the examples are relative to this folder (so that
``frazil run examples/X.json`` works); pilots run in their own directories,
so the copies submitted here get absolute paths.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent
DATASETS: list[tuple[str, int]] = [("local-demo.json", 4), ("nugen-local.json", 10), ("retry-demo.json", 2),
                                   ("osdf-demo.json", 3)]
FINAL = {"complete", "errors", "suspended"}
BAR_WIDTH = 40


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


def prepare(name: str, demo_dir: Path, out_dir: Path) -> Path:
    """A copy of an example with absolute module paths and ``demo_dir`` set."""
    config = json.loads((EXAMPLES / name).read_text())
    params = config.get("steering", {}).get("parameters", {})
    if "demo_dir" in params:
        params["demo_dir"] = str(demo_dir)
    for task in config.get("tasks", []):
        for tray in task.get("trays", []):
            for module in tray.get("modules", []):
                src = module.get("src", "")
                if src and "://" not in src and not src.startswith("/") and (EXAMPLES / src).is_file():
                    module["src"] = str(EXAMPLES / src)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(json.dumps(config, indent=2))
    return path


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir = Path(args.data_dir).resolve()
        self.port = free_port(args.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        env = {k: v for k, v in os.environ.items() if k not in ("FRAZIL_URL", "FRAZIL_TOKEN", "FRAZIL_TOKEN_FILE")}
        env.update({
            "FRAZIL_DATA_DIR": str(self.data_dir), "FRAZIL_DB": f"sqlite:///{self.data_dir}/frazil.db",
            # short intervals: a demo should react at once, not at production pace
            "FRAZIL_LOOP_INTERVAL_SECONDS": "0.5", "FRAZIL_PROVIDER_INTERVAL_SECONDS": "1",
            # the retry demo's retry waits 2 s, not the 60 s users get by default
            "FRAZIL_RETRY_DELAY_SECONDS": "2",
            "FRAZIL_PILOT_COMMAND": f"{sys.executable} -m server.cli pilot --max-backoff 2 --idle-timeout 600",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        })
        if args.provider == "slurm":
            # Slurm's pilots are batch (grid) pilots, which may write file:// outputs only under
            # grid_file_roots; here they share this machine's disk, so the demo's outputs are allowed.
            env.setdefault("FRAZIL_GRID_FILE_ROOTS", str(self.data_dir / "demo"))
        self.env = env
        self.token = ""
        self.federation: subprocess.Popen[str] | None = None

    def start_federation(self) -> None:
        """A director and an origin on 127.0.0.1 for osdf:///icecube/wipac; the server's pilots use it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.federation = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "federation", "--port", "0", "--root", str(self.data_dir / "osdf"),
             "--namespace", "/icecube/wipac"], cwd=REPO, env=self.env, stdout=subprocess.PIPE,
            stderr=open(self.data_dir / "federation.log", "ab"), text=True, start_new_session=True)
        info: dict[str, str] = {}
        while len(info) < 7:
            line = self.federation.stdout.readline() if self.federation.stdout else ""
            if not line:
                raise SystemExit(f"make run: frazil federation did not start; see {self.data_dir / 'federation.log'}")
            key, _, value = line.strip().partition(" ")
            info[key] = value
        self.env.update({"FRAZIL_OSDF_FEDERATION": info["federation"], "FRAZIL_PELICAN_CA_FILE": info["ca-file"]})
        print(f"frazil federation at {info['federation']} (osdf:///icecube/wipac/... is stored in {info['root']})")

    def stop_federation(self) -> None:
        if self.federation is not None and self.federation.poll() is None:
            self.federation.send_signal(signal.SIGTERM)
            try:
                self.federation.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.federation.kill()
                self.federation.wait()

    def frazil(self, *words: str, token: bool = False) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if token:
            env.update({"FRAZIL_URL": self.url, "FRAZIL_TOKEN": self.token})
        done = subprocess.run([sys.executable, "-m", "server.cli", *words], cwd=REPO, env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"make run: frazil {' '.join(words)} failed:\n{done.stderr.strip()}")
        return done

    def start_server(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "server.log", "ab")
        if self.port != self.args.port:
            print(f"port {self.args.port} is taken; using {self.port}")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "server", "--port", str(self.port),
             "--provider", self.args.provider, "--local-slots", f"cpus={self.args.cpus}"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise SystemExit(f"make run: the server exited; see {self.data_dir / 'server.log'}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    print(f"frazil server running at {self.url} (log: {self.data_dir / 'server.log'})")
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SystemExit("make run: the server did not answer within 30 s")

    def stop_server(self) -> None:
        if self.args.provider == "slurm":
            self.cancel_slurm_pilots()
        if self.server is None or self.server.poll() is not None:
            return
        self.server.send_signal(signal.SIGTERM)  # it stops its pilots, then itself
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()

    def cancel_slurm_pilots(self) -> None:
        """Slurm pilots outlive a server by design (a restart finds them again); the
        demo's end cancels its own, found by the server address in their comment."""
        try:
            listed = subprocess.run(["squeue", "-h", "-r", "-n", "frazil-pilot", "-o", "%i|%k"],
                                    capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            return
        ours = [line.split("|")[0] for line in listed.splitlines() if f";{self.url};" in line]
        if ours:
            subprocess.run(["scancel", *ours], capture_output=True, timeout=60)

    def submit_all(self) -> dict[str, str]:
        configs = self.data_dir / "demo" / "configs"
        submitted = {}
        for name, jobs in DATASETS:
            path = prepare(name, self.data_dir / "demo", configs)
            out = self.frazil("submit", str(path), "--jobs", str(jobs), token=True).stdout
            match = re.search(r"dataset (\d+) \(([0-9a-f]+)\)", out)
            if not match:
                raise SystemExit(f"make run: unexpected answer from frazil submit: {out!r}")
            print(f"  {out.strip()}  [{name}]")
            submitted[match.group(2)] = f"{match.group(1)} {name}"
        return submitted

    def get(self, path: str) -> Any:
        reply = requests.get(self.url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        reply.raise_for_status()
        return reply.json()

    def wait(self, datasets: dict[str, str]) -> dict[str, str]:
        """One progress bar over every task of the demo datasets."""
        tty = sys.stdout.isatty()
        last_print = 0.0
        deadline = time.monotonic() + self.args.timeout
        while True:
            counts: dict[str, int] = {}
            statuses = {}
            for dataset_id in datasets:
                for status, n in self.get(f"/datasets/{dataset_id}/task_counts/status").items():
                    counts[status] = counts.get(status, 0) + n
                statuses[dataset_id] = self.get(f"/datasets/{dataset_id}")["status"]
            total = sum(counts.values()) or 1
            done = counts.get("complete", 0)
            filled = BAR_WIDTH * done // total
            others = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "complete" and v)
            line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} tasks complete  {others}"
            if tty:
                print("\r" + line.ljust(110), end="", flush=True)
            elif time.monotonic() - last_print > 5:
                print(line, flush=True)
                last_print = time.monotonic()
            if all(s in FINAL for s in statuses.values()):
                print("\r" + line.ljust(110) if tty else line)
                return statuses
            if time.monotonic() > deadline:
                print()
                raise SystemExit(f"make run: datasets not finished after {self.args.timeout:.0f} s: {statuses}")
            time.sleep(0.5)

    def report(self, datasets: dict[str, str], statuses: dict[str, str]) -> None:
        for dataset_id, label in datasets.items():
            print(f"  dataset {label}: {statuses[dataset_id]}")
        retry_id = next(d for d, label in datasets.items() if label.endswith("retry-demo.json"))
        tasks = self.get(f"/datasets/{retry_id}/tasks?keys=task_id|job_index|failures|status")
        for task_id, task in sorted(tasks.items(), key=lambda kv: kv[1].get("job_index", 0)):
            print(f"  retry demo, job {task.get('job_index')}: {task.get('status')} after "
                  f"{task.get('failures', 0)} non-physics failure(s)")
        print()
        print(f"Website:  {self.url}/   (sign in with the token below)")
        print(f"Token:    {self.token}")
        print(f"Try:      export FRAZIL_URL={self.url} FRAZIL_TOKEN=<the token>")
        # The numbers of this run's datasets: a second `make run` on the same data dir makes new ones.
        retry_number = self.get(f"/datasets/{retry_id}")["dataset"]
        print(f"          .venv/bin/frazil status; .venv/bin/frazil status {retry_number}; "
              f".venv/bin/frazil logs {retry_number} 0/flaky; "
              "curl -H \"Authorization: Bearer $FRAZIL_TOKEN\" $FRAZIL_URL/providers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("FRAZIL_DEMO_PORT", "8080")))
    parser.add_argument("--data-dir", default="frazil-data")
    parser.add_argument("--cpus", type=int, default=max(2, min(4, os.cpu_count() or 2)),
                        help="cores the local pilots may use")
    parser.add_argument("--provider", choices=["local", "slurm"], default="local",
                        help="who starts the pilots: this script's server (local) or Slurm (sbatch must work here)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up waiting after this many seconds")
    parser.add_argument("--no-serve", action="store_true", help="stop the server once the datasets finished")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM both stop the server and its pilots (a shell that
    # starts us in the background would otherwise leave SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    demo = Demo(args)
    try:
        demo.start_federation()
        demo.start_server()
        demo.token = demo.frazil("token", "create", "--user", "demo", "--role", "admin",
                                 "--groups", "users").stdout.strip()
        print("submitting the example datasets:")
        datasets = demo.submit_all()
        statuses = demo.wait(datasets)
        demo.report(datasets, statuses)
        print(f"(datasets finished {time.monotonic() - started:.1f} s after the start)")
        if args.no_serve:
            return 0 if all(s == "complete" for s in statuses.values()) else 1
        print("\nServing until Ctrl-C.")
        while demo.server is not None and demo.server.poll() is None:
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the server and its pilots...")
        return 0
    finally:
        demo.stop_server()
        demo.stop_federation()


if __name__ == "__main__":
    sys.exit(main())
