"""Macro expansion speed: the tutorial's steering block, frazil vs IceProd 3.1.3.

Each job does what a task runner does before running a task: build the
runtime options for that job, then expand every steering parameter in the
steering scope. IceProd's parser runs on the same inputs in a separate venv
(``pip install --no-deps iceprod==3.1.3``, created once and cached), called
the way its ``ConfigParser.parseValue`` and ``scope_env`` call it.

Run: ``.venv/bin/python -m benchmarks.macros [--jobs N] [--iceprod-jobs M] [--repeat K]``
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import venv
from typing import Any

from common.macros import expand_scope, runtime_options

# The tutorial's steering.parameters: the "Submit" block and the "Popular
# macros" block (iceprod-tutorial-2024.txt), merged as one dataset would.
STEERING: dict[str, Any] = {
    "gcdfpass2": "/cvmfs/icecube.opensciencegrid.org/data/GCD/GeoCalibDetectorStatus_2020.Run134142.Pass2_V0.i3.gz",
    "seed": "$eval((${dataset}%20000)*10000 + ${job}*10 + ${iter})",
    "geometry": "IC86",
    "GENERATION::gamma": 1.5,
    "GENERATION::e_min": 10000,
    "GENERATION::e_max": 1000000,
    "GENERATION::zenith_mode": "COS",
    "GENERATION::n_events": 6000,
    "GENERATION::interaction0": "NuGenCCNC",
    "GENERATION::nugen_flavor": "NuTau",
    "GENERATION::this_interaction": "$steering(GENERATION::interaction${iter})",
    "GENERATION::mjd_20": 59000,
    "CORSIKA::eprimarymin": "600",
    "CORSIKA::eprimarymax": "$eval(10**(11))",
    "CORSIKA::run": "$eval($eval(${dataset}*100000 + ${job})%100000000 + 1)",
    "CORSIKA::seed": "$steering(seed)",
    "CORSIKA::showers": "$eval(${GENERATION::n_events}*50)",
    "CORSIKA::version": "v6960-5comp",
    "CISM::OVERSTZE": 1,
    "subdirectory": "$sprintf('%07d-%07d', $eval($(job)//1000*1000), $eval($(job)//1000*1000+999))",
    "TARGET": "gsiftp://gridftp.icecube.wisc.edu/data/sim/IceCube/2023/filtered/level2/"
    "neutrino-generator/$(dataset)/$steering(subdirectory)",
    "outfile": "NuGen_$(job).i3.zst",
    "env_path": "/cvmfs/icecube.opensciencegrid.org/py3-v4.3.0/icetray-env icetray/v1.9.2",
}
CONFIG: dict[str, Any] = {"version": 3.1, "options": {}, "steering": {"parameters": STEERING, "system": {}}}
ENVIRONMENT = {"OS_ARCH": "$OS_ARCH"}
DATASET = 22634
DATASET_ID = "a3f0c2e4d5b611ee9c1e0242ac120002"
ICEPROD_VERSION = "3.1.3"

# Runs inside IceProd's venv: argv = jobs, repeat; prints a JSON list of seconds.
_ICEPROD_SCRIPT = r"""
import copy, json, os, sys, time
from iceprod.core.parser import ExpParser
from iceprod.core.defaults import add_default_options
spec = json.loads(sys.stdin.read())
config, steering, environment = spec["config"], spec["steering"], spec["environment"]
jobs, repeat = int(sys.argv[1]), int(sys.argv[2])
parser = ExpParser()

def parse_value(value, env):  # ConfigParser.parseValue
    if isinstance(value, str):
        while value != (ret := parser.parse(value, config, env)):
            value = ret
        if isinstance(value, str):
            value = os.path.expandvars(value)
    return value

times = []
for _ in range(repeat):
    start = time.process_time()
    for job in range(jobs):
        options = dict(spec["options"])  # _fill_options + add_default_options
        options.update(dataset=spec["dataset"], dataset_id=spec["dataset_id"], job=job,
                       jobs_submitted=jobs, task_id="tid", task="generation", debug=False, iter=0)
        add_default_options(options)
        config["options"] = options
        env = {"parameters": dict(steering), "environment": environment}  # scope_env
        for name, raw in steering.items():
            new = parse_value(raw, env)
            if new != raw:
                env["parameters"][name] = new
    times.append(time.process_time() - start)
json.dump({"times": times, "sample": env["parameters"]}, sys.stdout)
"""


def run_frazil(jobs: int) -> tuple[float, dict[str, Any]]:
    """CPU seconds for ``jobs`` jobs, and the last job's parameters.

    CPU time of this process, for both parsers: the machine is shared, and
    wall time would measure the neighbours as much as the parser.
    """
    params: dict[str, Any] = {}
    start = time.process_time()
    for job in range(jobs):
        options = runtime_options(
            CONFIG, dataset=DATASET, dataset_id=DATASET_ID, job=job, jobs_submitted=jobs,
            task="generation", task_id="tid", iter=0,
        )
        config = {**CONFIG, "options": options}
        params = expand_scope(STEERING, outer=None, config=config, environment=ENVIRONMENT)
    return time.process_time() - start, params


def iceprod_python() -> pathlib.Path:
    """A venv holding IceProd 3.1.3 only (its parser needs nothing else)."""
    root = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
    env_dir = root / "frazil-bench" / f"iceprod-{ICEPROD_VERSION}-venv"
    python = env_dir / "bin" / "python"
    marker = env_dir / ".installed"
    if not marker.exists():
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
            subprocess.run(  # noqa: S603
                [str(python), "-m", "pip", "install", "--quiet", "--no-deps", f"iceprod=={ICEPROD_VERSION}"],
                check=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            raise SystemExit(
                f"cannot install iceprod=={ICEPROD_VERSION} into {env_dir} ({exc}); "
                "use --skip-iceprod to measure frazil alone"
            ) from None
        marker.touch()
    return python


def iceprod_equivalent() -> dict[str, Any]:
    """The block as IceProd 3.1.3 can evaluate it: ``${name}`` (F8) is not
    IceProd syntax, so its parser leaves those values unexpanded, cheaply;
    with ``$(name)`` it does the same work as frazil."""
    return {k: v.replace("${", "$(").replace("}", ")") if isinstance(v, str) else v for k, v in STEERING.items()}


def run_iceprod(jobs: int, repeat: int, steering: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
    spec = {
        "config": {**CONFIG, "steering": {**CONFIG["steering"], "parameters": steering}},
        "steering": steering, "environment": ENVIRONMENT, "options": CONFIG["options"],
        "dataset": DATASET, "dataset_id": DATASET_ID,
    }
    proc = subprocess.run(
        [str(iceprod_python()), "-c", _ICEPROD_SCRIPT, str(jobs), str(repeat)],  # noqa: S603
        input=json.dumps(spec), capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"IceProd {ICEPROD_VERSION} benchmark failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout)
    return result["times"], result["sample"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000, help="jobs expanded by frazil per run")
    ap.add_argument("--iceprod-jobs", type=int, default=5_000, help="jobs expanded by IceProd per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the median is reported")
    ap.add_argument("--skip-iceprod", action="store_true", help="measure frazil only")
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.iceprod_jobs < 1 or args.repeat < 1:
        ap.error("--jobs, --iceprod-jobs and --repeat must be positive")

    # Runs alternate (frazil, IceProd, IceProd on the $(name) form) so that a
    # busy spell on the machine hits all three alike; medians are reported.
    frazil_times: list[float] = []
    ice_times: list[float] = []
    eq_times: list[float] = []
    sample: dict[str, Any] = {}
    ice_sample: dict[str, Any] = {}
    eq_sample: dict[str, Any] = {}
    equivalent = iceprod_equivalent()
    for _ in range(args.repeat):
        seconds, sample = run_frazil(args.jobs)
        frazil_times.append(seconds)
        if not args.skip_iceprod:
            times, ice_sample = run_iceprod(args.iceprod_jobs, 1, STEERING)
            ice_times += times
            times, eq_sample = run_iceprod(args.iceprod_jobs, 1, equivalent)
            eq_times += times
    shown = ("seed", "CORSIKA::run", "subdirectory", "TARGET")
    frazil_rate = args.jobs / statistics.median(frazil_times)
    result: dict[str, Any] = {
        "benchmark": "macros",
        "clock": "process CPU time",
        "parameters": len(STEERING),
        "repeat": args.repeat,
        "frazil_jobs": args.jobs,
        "frazil_jobs_per_s": round(frazil_rate, 1),
        "frazil_last_job": {k: sample[k] for k in shown},
    }
    if not args.skip_iceprod:
        ice_rate = args.iceprod_jobs / statistics.median(ice_times)
        eq_rate = args.iceprod_jobs / statistics.median(eq_times)
        result.update(
            iceprod_version=ICEPROD_VERSION,
            iceprod_jobs=args.iceprod_jobs,
            # Same inputs: IceProd leaves the ${name} values unexpanded.
            iceprod_jobs_per_s=round(ice_rate, 1),
            ratio=round(frazil_rate / ice_rate, 2),
            iceprod_last_job={k: ice_sample[k] for k in shown},
            # ${name} written $(name), so that IceProd computes every value too.
            iceprod_equivalent_jobs_per_s=round(eq_rate, 1),
            ratio_equivalent=round(frazil_rate / eq_rate, 2),
            iceprod_equivalent_last_job={k: eq_sample[k] for k in shown},
        )
    result["python"] = sys.version.split()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
