"""Runtime values that a task sees in ``options`` (reference §3.10)."""
from __future__ import annotations

from typing import Any, Mapping

from .api import expand
from .coercion import to_text

# IceProd's add_default_options, with 3.2's site_temp (the server overrides
# it with the site's own scratch space).
STORAGE_DEFAULTS: dict[str, str] = {
    "resource_url": "http://prod-exe.icecube.wisc.edu/",
    "data_url": "gsiftp://gridftp.icecube.wisc.edu/",
    "svn_repository": "http://code.icecube.wisc.edu/svn/",
    "site_temp": "osdf:///icecube/wipac/scratch/simprod",
}
_DATASET_TEMP = "$(site_temp)/$(dataset)"
_JOB_TEMP = "$(site_temp)/$(dataset)/$(job)"


def runtime_options(
    config: Mapping[str, Any] | None,
    *,
    dataset: int,
    dataset_id: str,
    job: int,
    jobs_submitted: int,
    task: str | None = None,
    task_id: str | None = None,
    iter: int | None = None,  # noqa: A002 - the option's name in IceProd
    debug: bool = False,
    input: str | None = None,  # noqa: A002
    output: str | None = None,
) -> dict[str, Any]:
    """A new ``options`` dict: the config's options, the runtime values (None
    ones left out) and the storage defaults where the config has none.

    ``dataset_temp`` and ``job_temp`` are returned as concrete strings when
    they come from the defaults, so that consumers need not expand them.
    """
    base = config.get("options") if config else None
    options: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
    runtime = {
        "dataset": dataset, "dataset_id": dataset_id, "job": job,
        "jobs_submitted": jobs_submitted, "task": task, "task_id": task_id,
        "iter": iter, "debug": debug, "input": input, "output": output,
    }
    for key, value in runtime.items():
        if value is not None:
            options[key] = value
    for key, value in STORAGE_DEFAULTS.items():
        options.setdefault(key, value)
    if "dataset_temp" not in options or "job_temp" not in options:
        site_temp = options["site_temp"]
        if isinstance(site_temp, str) and "$" not in site_temp and "\\" not in site_temp:
            # The common case, written out: this runs once per task.
            dataset_temp = f"{site_temp}/{to_text(options['dataset'])}"
            job_temp = f"{dataset_temp}/{to_text(options['job'])}"
        else:
            scope = {"options": options}
            dataset_temp = str(expand(_DATASET_TEMP, config=scope))
            job_temp = str(expand(_JOB_TEMP, config=scope))
        options.setdefault("dataset_temp", dataset_temp)
        options.setdefault("job_temp", job_temp)
    return options
