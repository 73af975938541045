"""Turn (config, job, task) into a :class:`TaskPlan`: the one place where the
config language meets execution.

The order follows IceProd's task script (reference §7.1–7.2) so configs
behave the same: scopes steering → task → tray (× iterations) → module; each
scope's parameters are expanded in the merged outer scope; data entries are
expanded in their scope; ``$(input)``/``$(output)`` list the local names of
the files declared at the current scope and all enclosing ones (current
first); module args become an argv list (no shell).

Both the runner and the submit-time check call :func:`build_task_plan`, so a
config that would fail at run time fails at submission with the same message.
"""
from __future__ import annotations

import functools
import posixpath
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from common.commands import module_command, src_url
from common.config import fill_defaults
from common.macros import Diagnostic, MacroError, budget, expand, expand_scope, runtime_options
from common.macros.budget import charge
from common.plan.records import DataTransfer, ModulePlan, TaskPlan, TrayPlan
from common.resources import RESOURCE_NAMES, RequirementError, parse_requirements
from common.sources import clean_path

URL_PREFIXES = ("file:", "http:", "https:", "ftp:", "ftps:", "gsiftp:", "pelican:", "osdf:")
# IceProd 3.x resolves $environ(...) to shell references filled in at run time
# from the module's environment (reference §3.5); frazil keeps that contract.
DEFAULT_ENVIRONMENT = {"OS_ARCH": "$OS_ARCH", "SROOT": "$SROOT", "I3_BUILD": "$I3_BUILD", "I3_SRC": "$I3_SRC"}
_TRANSFER_VALUES = {
    True: "yes", "yes": "yes", "y": "yes", "1": "yes", "true": "yes",
    False: "no", "no": "no", "n": "no", "0": "no", "false": "no",
    "maybe": "maybe",
}


REQUIREMENTS_SECONDS = 0.25
REQUIREMENTS_WORK = 1_000_000
"""One job's requirements are resolved at materialization, job after job, on
the server: they get this small budget of their own (the submit check tries
the first and the last job with it, so a config that passes is materialized)."""
F = TypeVar("F", bound=Callable[..., Any])


def _within_budget(seconds: float | None = None, work: int | None = None) -> Callable[[F], F]:
    """Run under a macro budget (common.macros.budget): the caller's when one is
    open (a submission check), else a new one; ``seconds``/``work``: always a
    new one of that size."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if seconds is None or work is None:
                with budget():
                    return fn(*args, **kwargs)
            with budget(seconds, work, reuse=False):
                return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate


class PlanError(ValueError):
    """The task cannot be planned; ``problems`` lists (path, message) pairs."""

    def __init__(self, problems: list[Diagnostic]):
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems) or "cannot plan task")


@dataclass
class JobContext:
    """Runtime values of the job being planned (IceProd's injected options)."""

    dataset: int
    job: int
    jobs_submitted: int
    dataset_id: str = ""
    task_id: str = ""
    debug: bool = False
    environment: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ENVIRONMENT))
    option_overrides: dict[str, Any] = field(default_factory=dict)
    """Options forced by whoever runs the task (e.g. a local ``site_temp``)."""
    task_files: list[dict[str, Any]] = field(default_factory=list)
    """Per-job files registered with ``/datasets/{id}/files`` for this task
    (data entries: remote, local, type, movement, transfer); appended to the
    task's ``data`` when the task says ``task_files: true``, as IceProd does."""
    src_base: str = ""
    """Where relative ``src`` files come from (IceProd ships them from the submit
    dir; frazil fetches them from here into the work dir). Empty: not fetched."""
    sources: dict[str, str] = field(default_factory=dict)
    """Module sources carried at submit: {work-dir path: URL}; a relative ``src``
    found here is fetched to that path before the module runs (claim ``sources``)."""


def task_names(config: dict[str, Any]) -> list[str]:
    return [str(task.get("name", "")) for task in config.get("tasks", [])]


def find_task(config: dict[str, Any], task: str | int) -> tuple[int, dict[str, Any]]:
    tasks = config.get("tasks", [])
    if isinstance(task, int) or (isinstance(task, str) and task.isdigit() and task not in task_names(config)):
        index = int(task)
        if 0 <= index < len(tasks):
            return index, tasks[index]
    for index, candidate in enumerate(tasks):
        if candidate.get("name") == task:
            return index, candidate
    names = ", ".join(repr(n) for n in task_names(config)) or "none"
    raise PlanError([Diagnostic("config['tasks']", str(task), f"no task named {task!r} (tasks: {names})")])


class _Planner:
    """Carries the expansion context through the scopes of one task."""

    def __init__(self, config: dict[str, Any], ctx: JobContext, *, strict: bool, diagnostics: list[Diagnostic]):
        self.base = config
        self.ctx = ctx
        self.strict = strict
        self.diagnostics = diagnostics
        self.environment = ctx.environment

    def options(self, **extra: Any) -> dict[str, Any]:
        options = runtime_options(
            self.base,
            dataset=self.ctx.dataset,
            dataset_id=self.ctx.dataset_id or str(self.ctx.dataset),
            job=self.ctx.job,
            jobs_submitted=self.ctx.jobs_submitted,
            debug=self.ctx.debug,
            **{k: v for k, v in extra.items() if k in {"task", "task_id", "iter", "input", "output"}},
        )
        options.update(self.ctx.option_overrides)
        return options

    def config_with(self, options: dict[str, Any]) -> dict[str, Any]:
        # Shallow copy: expand() never mutates, so only 'options' needs replacing.
        config = dict(self.base)
        config["options"] = options
        return config

    def expand(self, value: Any, config: dict[str, Any], parameters: dict[str, Any], path: str) -> Any:
        return expand(
            value, config=config, parameters=parameters, environment=self.environment,
            strict=False, diagnostics=self.diagnostics, path=path,
        )

    def scope(self, parameters: dict[str, Any], outer: dict[str, Any] | None, config: dict[str, Any], path: str) -> dict[str, Any]:
        # Parameters are intermediate values: one may hold a phrase that only
        # resolves in an inner scope (the tutorial's seed uses ${iter} at
        # steering level). So problems are reported where a value is used
        # (args, src, data, requirements), not where a parameter is defined.
        return expand_scope(
            parameters or {}, outer=outer, config=config, environment=self.environment,
            strict=False, diagnostics=None, path=path,
        )

    def data(self, entries: list[dict[str, Any]], config: dict[str, Any], parameters: dict[str, Any], path: str) -> list[DataTransfer]:
        planned = []
        for i, entry in enumerate(entries or []):
            entry_path = f"{path}[{i}]"
            expanded = self.expand(entry, config, parameters, entry_path)
            planned.append(self._data_entry(expanded, config["options"], entry_path))
        return planned

    def _data_entry(self, entry: dict[str, Any], options: dict[str, Any], path: str) -> DataTransfer:
        remote = str(entry.get("remote") or "")
        local = str(entry.get("local") or "")
        dtype = str(entry.get("type") or "permanent")
        transfer_value = entry.get("transfer", True)
        key = transfer_value.lower() if isinstance(transfer_value, str) else transfer_value
        transfer = _TRANSFER_VALUES.get(key, None) if not isinstance(key, float) else None
        if transfer is None:
            self.diagnostics.append(Diagnostic(f"{path}['transfer']", str(transfer_value), "unknown transfer value"))
            transfer = "yes"
        if remote.startswith(URL_PREFIXES) or remote.startswith("/"):
            url = remote
        else:
            base_key = "data_url" if dtype == "permanent" else dtype
            base = str(options.get(base_key, ""))
            name = remote or local
            url = f"{base.rstrip('/')}/{name}" if base else name
        if not local:
            local = posixpath.basename(remote.rstrip("/")) if remote else ""
        if not local:
            self.diagnostics.append(Diagnostic(f"{path}['local']", "", "data entry needs 'local' or 'remote'"))
        return DataTransfer(url=url, local=local, type=dtype, movement=str(entry.get("movement") or "input"),
                            transfer=transfer, path=path)

    def module(self, module: dict[str, Any], index: int, config: dict[str, Any], outer: dict[str, Any],
               path: str, enclosing: list[DataTransfer]) -> ModulePlan:
        parameters = self.scope(module.get("parameters", {}), outer, config, f"{path}['parameters']")
        data = self.data(module.get("data", []), config, parameters, f"{path}['data']")
        scoped = data + enclosing
        config = self.config_with({
            **config["options"],
            "input": " ".join(d.local for d in scoped if d.is_input),
            "output": " ".join(d.local for d in scoped if d.is_output),
        })
        src = self.expand(module.get("src", ""), config, parameters, f"{path}['src']")
        env_shell = self.expand(module.get("env_shell", ""), config, parameters, f"{path}['env_shell']")
        # args are expanded once, by module_command through expand_token: a
        # second pass would undo F2 (an escaped \$ must stay literal).
        args = module.get("args", "")
        configs = self.expand(module.get("configs", {}), config, parameters, f"{path}['configs']")
        name = str(self.expand(module.get("name", ""), config, parameters, f"{path}['name']"))

        def expand_token(token: Any) -> Any:
            if isinstance(token, str) and "$" not in token:
                # F9: a string with no macro reaches the program as written ("true",
                # "1.50" and "007" stay so; IceProd's typing made them True, 1.5, 7).
                return token
            return self.expand(token, config, parameters, f"{path}['args']")

        try:
            command = module_command(
                src=str(src or ""), args=args, env_shell=env_shell if isinstance(env_shell, list) else str(env_shell or ""),
                running_class=str(module.get("running_class") or ""), expand_token=expand_token,
            )
        except ValueError as exc:
            self.diagnostics.append(Diagnostic(path, str(src), str(exc)))
            command = None
        fetch = []
        src_text = str(src or "")
        carried = self.ctx.sources.get(clean_path(src_text.strip()) or "") if src_text and not src_url(src_text) else None
        if carried:  # IceProd runs a relative src as ./src: it lands at that path in the work dir
            fetch.append(DataTransfer(url=carried, local=clean_path(src_text.strip()) or src_text, movement="input",
                                      path=f"{path}['src']"))
        elif src_text and self.ctx.src_base and not src_url(src_text) and not src_text.startswith("/"):
            fetch.append(DataTransfer(url=f"{self.ctx.src_base.rstrip('/')}/{src_text}",
                                      local=posixpath.basename(src_text), movement="input", path=f"{path}['src']"))
        for word, kind in ((str(src or ""), "src"), ((command.env_shell[0] if command and command.env_shell else ""), "env_shell")):
            url = src_url(word) if word else None
            if url:
                fetch.append(DataTransfer(url=url, local=posixpath.basename(url.rstrip("/")), movement="input",
                                          path=f"{path}['{kind}']"))
        return ModulePlan(
            name=name, index=index, path=path,
            argv=list(command.argv) if command else [],
            env_shell=list(command.env_shell) if command else [],
            stdin=command.stdin if command else None,
            env_clear=bool(module.get("env_clear", True)),
            configs=configs if isinstance(configs, dict) else {},
            fetch=fetch, data=data, parameters=parameters,
        )


def _requirements(planner: _Planner, task: dict[str, Any], config: dict[str, Any], parameters: dict[str, Any], path: str) -> dict[str, Any]:
    """The task's requirements expanded for this job and read by the one
    requirement parser (``common.resources``): what the task is sized by."""
    # expand() builds new containers and never mutates its input: no copy needed.
    requirements = planner.expand(task.get("requirements", {}), config, parameters, path)
    if not isinstance(requirements, dict):
        planner.diagnostics.append(Diagnostic(path, str(requirements), "requirements must be an object"))
        return {}
    try:
        return parse_requirements(requirements)
    except RequirementError:
        pass  # read key by key below, to report every bad value with its path
    out = dict(requirements)
    for key in (*RESOURCE_NAMES, "os", "site"):
        if key not in out:
            continue
        try:
            parsed = parse_requirements({key: out[key]})
        except RequirementError as exc:
            planner.diagnostics.append(Diagnostic(f"{path}['{key}']", str(out[key]), f"{key}: {exc.message}"))
            continue
        if key in parsed:
            out[key] = parsed[key]
        else:
            del out[key]  # None or "": the default applies
    return out


def _task_scopes(planner: _Planner, task_cfg: dict[str, Any], task_name: str, task_id: str,
                 task_index: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(options, config with them, steering parameters, task parameters): the
    scopes a task's own values (data, requirements, container) expand in."""
    options = planner.options(task=task_name, task_id=task_id)
    config_t = planner.config_with(options)
    steering = planner.base.get("steering") or {}
    steering_params = planner.scope(steering.get("parameters", {}), None, config_t, "config['steering']['parameters']")
    task_params = planner.scope(task_cfg.get("parameters", {}), steering_params, config_t,
                                f"config['tasks'][{task_index}]['parameters']")
    return options, config_t, steering_params, task_params


@_within_budget(REQUIREMENTS_SECONDS, REQUIREMENTS_WORK)
def task_requirements(config: dict[str, Any], task_index: int, ctx: JobContext) -> dict[str, Any]:
    """The requirements of task ``task_index`` for job ``ctx.job``, exactly as
    :func:`build_task_plan` resolves them (same scopes, same parser), without
    planning the rest of the task: what materialization stores per job.
    ``config`` is the stored (default-filled) config. Raises :class:`PlanError`,
    or BudgetExceeded past ``REQUIREMENTS_SECONDS``/``REQUIREMENTS_WORK``."""
    problems: list[Diagnostic] = []
    task_cfg = config["tasks"][task_index]
    task_name = str(task_cfg.get("name", ""))
    planner = _Planner(config, ctx, strict=True, diagnostics=problems)
    task_id = ctx.task_id or f"{ctx.dataset}.{ctx.job}.{task_name}"
    _, config_t, _, task_params = _task_scopes(planner, task_cfg, task_name, task_id, task_index)
    requirements = _requirements(planner, task_cfg, config_t, task_params,
                                 f"config['tasks'][{task_index}]['requirements']")
    if problems:
        raise PlanError(_dedupe(problems))
    return requirements


@_within_budget()
def build_task_plan(config: dict[str, Any], task: str | int, ctx: JobContext, *, strict: bool = True,
                    diagnostics: list[Diagnostic] | None = None, defaults_filled: bool = False) -> TaskPlan:
    """Resolve ``task`` of job ``ctx.job`` into a :class:`TaskPlan`.

    ``strict``: raise :class:`PlanError` listing every unresolved macro or bad
    value (with its config path). Otherwise problems are appended to
    ``diagnostics`` and the plan keeps failed phrases literally, like IceProd.
    Runs within the open macro budget, or a default one (BudgetExceeded).
    """
    collected: list[Diagnostic] = [] if diagnostics is None else diagnostics
    start = len(collected)
    filled = config if defaults_filled else fill_defaults(config)
    task_index, task_cfg = find_task(filled, task)
    task_name = str(task_cfg.get("name", ""))
    planner = _Planner(filled, ctx, strict=strict, diagnostics=collected)
    task_id = ctx.task_id or f"{ctx.dataset}.{ctx.job}.{task_name}"

    options, config_t, steering_params, task_params = _task_scopes(planner, task_cfg, task_name, task_id, task_index)
    steering = filled.get("steering", {})
    steering_data = planner.data(steering.get("data", []), config_t, steering_params, "config['steering']['data']")

    tpath = f"config['tasks'][{task_index}]"
    task_entries = list(task_cfg.get("data", []))
    if task_cfg.get("task_files"):
        task_entries += [{k: v for k, v in f.items() if k in {"remote", "local", "type", "movement", "transfer"}}
                         for f in ctx.task_files]
    task_data = planner.data(task_entries, config_t, task_params, f"{tpath}['data']")
    requirements = _requirements(planner, task_cfg, config_t, task_params, f"{tpath}['requirements']")
    container = planner.expand(task_cfg.get("container", ""), config_t, task_params, f"{tpath}['container']")

    trays: list[TrayPlan] = []
    for tray_index, tray in enumerate(task_cfg.get("trays", [])):
        rpath = f"{tpath}['trays'][{tray_index}]"
        iterations = tray.get("iterations", 1)
        if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
            collected.append(Diagnostic(f"{rpath}['iterations']", str(iterations), "iterations must be an integer >= 1"))
            iterations = 1
        for iteration in range(iterations):
            charge()  # 10**7 iterations of nothing must run out of time too
            config_i = planner.config_with({**options, "iter": iteration})
            tray_params = planner.scope(tray.get("parameters", {}), task_params, config_i, f"{rpath}['parameters']")
            tray_data = planner.data(tray.get("data", []), config_i, tray_params, f"{rpath}['data']")
            enclosing = tray_data + task_data + steering_data
            modules = [
                planner.module(module, m_index, config_i, tray_params, f"{rpath}['modules'][{m_index}]", enclosing)
                for m_index, module in enumerate(tray.get("modules", []))
            ]
            trays.append(TrayPlan(name=str(tray.get("name", "")), index=tray_index, iteration=iteration,
                                  path=rpath, data=tray_data, modules=modules))

    plan = TaskPlan(
        dataset_id=options["dataset_id"], dataset=ctx.dataset, job=ctx.job, jobs_submitted=ctx.jobs_submitted,
        task_name=task_name, task_index=task_index, task_id=task_id, requirements=requirements,
        container=str(container or ""), steering_data=steering_data, task_data=task_data, trays=trays,
        options=options, debug=ctx.debug,
    )
    problems = _dedupe(collected[start:])
    if strict and problems:
        raise PlanError(problems)
    return plan


def _dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for diag in diagnostics:
        key = (diag.path, diag.message)
        if key not in seen:
            seen.add(key)
            unique.append(diag)
    return unique


__all__ = ["JobContext", "PlanError", "build_task_plan", "find_task", "task_names", "task_requirements", "MacroError",
           "DEFAULT_ENVIRONMENT"]
