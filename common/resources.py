"""Resource names, units, defaults, matching, escalation and binning.

Units are IceProd's: cpu and gpu are counts, memory and disk are GB
(decimal: 1 GB = 1000 MB, as IceProd's ``request_memory = GB*1000``), time is
hours.  Everything that compares a task's needs with a pilot's free slot, or
groups tasks for pilot demand, goes through this module so server and pilot
agree on the arithmetic.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "RESOURCE_NAMES",
    "UNITS",
    "DEFAULTS",
    "MINIMUM",
    "MAXIMUM",
    "ESCALATABLE",
    "MEMORY_BINS",
    "DISK_BINS",
    "TIME_BINS",
    "Resources",
    "RequirementError",
    "is_macro",
    "parse_requirement",
    "parse_requirements",
    "parse_os",
    "parse_site",
    "parse_size",
    "parse_duration",
    "escalate",
    "escalate_requirements",
    "resource_class",
    "class_ceiling",
    "condor_time_category",
]

RESOURCE_NAMES: tuple[str, ...] = ("cpu", "gpu", "memory", "disk", "time")
UNITS: dict[str, str] = {"cpu": "cores", "gpu": "GPUs", "memory": "GB", "disk": "GB", "time": "hours"}
#: The tutorial's defaults (also what IceProd's fill_defaults stores).
DEFAULTS: dict[str, float | int] = {"cpu": 1, "gpu": 0, "memory": 1.0, "disk": 1.0, "time": 1.0}
#: The least a requirement may be (cpu and gpu inclusive; memory, disk and
#: time must be MORE than 0) and the most (inclusive): a request no machine
#: can offer is a typo, better refused than left waiting forever.
MINIMUM: dict[str, float | int] = {"cpu": 1, "gpu": 0, "memory": 0, "disk": 0, "time": 0}
MAXIMUM: dict[str, float | int] = {"cpu": 10_000, "gpu": 1000, "memory": 1e6, "disk": 1e9, "time": 1e6}
#: frazil raises only these after a failure of that kind; IceProd's CPU rule
#: ("+1 core when usage > 1.1") is deliberately absent: it kept bumping cores
#: of multi-threaded-looking but CPU-bound tasks ("stop increasing cpu
#: requests needlessly on retry", reference §11).
ESCALATABLE = frozenset({"memory", "disk", "time"})

# Float noise allowance when comparing (1.5 * 3.2 is 4.800000000000001).
_EPS = 1e-9

#: Bin edges (rounding UP) for resource classes; beyond the last edge the
#: sequence continues (x1.5 then x4/3 for sizes, doubling for time).
MEMORY_BINS: tuple[float, ...] = (0.5, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
DISK_BINS: tuple[float, ...] = (1, 2, 4, 6, 8, 10, 12, 16, 24, 32, 48, 64)
TIME_BINS: tuple[float, ...] = (1, 2, 4, 8, 12, 24, 40, 168)


@dataclass(frozen=True)
class Resources:
    """A task's needs, or a pilot's total or free resources."""

    cpu: int = 1
    gpu: int = 0
    memory: float = 1.0
    disk: float = 1.0
    time: float = 1.0

    def __post_init__(self) -> None:
        for name in ("cpu", "gpu"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Resources.{name} must be a whole number >= 0, got {value!r}")
        for name in ("memory", "disk", "time"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"Resources.{name} must be a finite number, got {value!r}")
            if value < 0 and name != "time":  # a slot past its lifetime has negative time left
                raise ValueError(f"Resources.{name} must be >= 0, got {value!r}")

    def fits(self, free: Resources) -> bool:
        """Whether this need fits into ``free`` (time: the pilot's remaining lifetime)."""
        return (self.cpu <= free.cpu and self.gpu <= free.gpu
                and self.memory <= free.memory + _EPS and self.disk <= free.disk + _EPS
                and self.time <= free.time + _EPS)

    def subtract(self, claim: Resources) -> Resources:
        """Free resources after ``claim`` starts running in this slot.

        Time is not consumed by a claim: tasks run side by side, and ``time``
        of a slot is its remaining lifetime, which only the clock reduces.
        """
        if not claim.fits(replace(self, time=max(self.time, claim.time))):
            raise ValueError(f"claim {claim} does not fit into free {self}")
        return replace(self, cpu=self.cpu - claim.cpu, gpu=self.gpu - claim.gpu,
                       memory=_tidy(self.memory - claim.memory), disk=_tidy(self.disk - claim.disk))

    def add(self, claim: Resources) -> Resources:
        """Free resources after ``claim`` ended (the inverse of :meth:`subtract`)."""
        return replace(self, cpu=self.cpu + claim.cpu, gpu=self.gpu + claim.gpu,
                       memory=_tidy(self.memory + claim.memory), disk=_tidy(self.disk + claim.disk))

    def with_time(self, hours: float) -> Resources:
        return replace(self, time=hours)

    def as_dict(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in RESOURCE_NAMES}

    @classmethod
    def from_requirements(cls, requirements: Mapping[str, Any] | None) -> Resources:
        """A task's size from its ``requirements`` (see :func:`parse_requirement`).

        Keys other than the five resources (``os``, ``site``...) are ignored;
        a missing, None or "" value takes the default. Raises
        :class:`RequirementError` naming the field.
        """
        requirements = _mapping(requirements)
        return cls(**{name: parse_requirement(name, requirements.get(name)) for name in RESOURCE_NAMES})


def _tidy(value: float) -> float:
    return round(value, 9)


# -- the requirement parser -------------------------------------------------------------
#
# Every reader of a task's requirements calls these: the config checks (raw
# values, macros allowed), plan building and materialization (expanded
# values), the store's claim shape, edit_config, bulk_requirements and the
# pilot. So a value means the same everywhere, and a value one of them
# refuses is refused by all of them with the same message.

class RequirementError(ValueError):
    """A requirement value that cannot be read; ``key`` is the field (``memory``)."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"requirements.{key}: {message}" if key else message)


def is_macro(value: Any) -> bool:
    """A string holding a macro (``"$eval(2*$(job))"``), expanded per job later."""
    return isinstance(value, str) and "$" in value


def parse_requirement(name: str, raw: Any) -> int | float:
    """The value of resource ``name`` in its unit, from any accepted form.

    * missing (None) or ``""``: the default (:data:`DEFAULTS`);
    * ``cpu`` (>= 1) and ``gpu`` (>= 0): a whole number, also as ``2.0`` or
      ``"2"``; ``gpu`` may be a list of distinct GPU ids (``["0", "1"]``: 2);
    * ``memory`` / ``disk`` (> 0): GB as a number or numeric string, or a
      string with a unit (``"4GB"``, ``"512MB"``, ``"2G"``, ``"1GiB"``);
    * ``time`` (> 0): hours, or a string with units (``"90m"``, ``"1h30m"``);
    * a macro string, a bool or anything else: :class:`RequirementError`.
    """
    if name not in DEFAULTS:
        raise RequirementError(name, f"unknown resource (known: {', '.join(RESOURCE_NAMES)})")
    if raw is None or raw == "":
        return DEFAULTS[name]
    if isinstance(raw, bool):
        raise RequirementError(name, f"expected a number, got {raw!r}")
    if is_macro(raw):
        raise RequirementError(name, f"{raw!r} still holds a macro; expand it first")
    if name in ("cpu", "gpu"):
        value = _count(name, raw)
        if value < MINIMUM[name]:
            raise RequirementError(name, f"must be at least {MINIMUM[name]}, got {raw!r}")
        _at_most(name, value, raw)
        return value
    try:
        number = parse_duration(raw) if name == "time" else parse_size(raw)
    except ValueError as exc:
        raise RequirementError(name, str(exc)) from None
    if number <= MINIMUM[name]:
        raise RequirementError(name, f"must be greater than {MINIMUM[name]} ({UNITS[name]}), got {raw!r}")
    _at_most(name, number, raw)
    # A number stays as written (2 stays 2); a string becomes its number.
    return raw if isinstance(raw, (int, float)) else number


def _at_most(name: str, value: float, raw: Any) -> None:
    if value > MAXIMUM[name]:
        raise RequirementError(name, f"must be at most {MAXIMUM[name]:g} ({UNITS[name]}), got {raw!r}")


def _count(name: str, raw: Any) -> int:
    if name == "gpu" and isinstance(raw, list):
        # GPU ids, as a slot lists its devices (CUDA_VISIBLE_DEVICES). A task
        # can only ask for a number of GPUs (the pilot picks which), so the
        # list counts; materialize read it so before there was one parser.
        if not all(isinstance(g, (str, int)) and not isinstance(g, bool) and str(g).strip() for g in raw):
            raise RequirementError(name, f"a list of GPUs must hold GPU ids (strings or integers), got {raw!r}")
        if len({str(g).strip() for g in raw}) != len(raw):
            raise RequirementError(name, f"a list of GPUs must not repeat an id, got {raw!r}")
        return len(raw)
    try:
        number = float(raw.strip()) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError):
        raise RequirementError(name, f"expected a whole number, got {raw!r}") from None
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise RequirementError(name, f"expected a whole number >= 0, got {raw!r}")
    return int(number)


def _mapping(requirements: Any) -> Mapping[str, Any]:
    if requirements is None:
        return {}
    if not isinstance(requirements, Mapping):
        raise RequirementError("", f"requirements must be an object, got {type(requirements).__name__}")
    return requirements


def parse_requirements(requirements: Mapping[str, Any] | None) -> dict[str, Any]:
    """A checked copy of a task's requirements, as stored with the task.

    Each resource present becomes its number (``"4GB"`` → 4.0, ``["0","1"]``
    → 2; ``None``/``""`` are dropped, so the default applies); ``os`` becomes
    a list of strings (one string is a list of one); ``site`` must be a
    string; other keys are kept as they are. Raises :class:`RequirementError`.
    """
    out = dict(_mapping(requirements))
    for name in RESOURCE_NAMES:
        if name in out:
            if out[name] is None or out[name] == "":
                del out[name]
            else:
                out[name] = parse_requirement(name, out[name])
    if "os" in out:
        out["os"] = parse_os(out["os"])
    if out.get("site") is not None:
        out["site"] = parse_site(out["site"])
    return out


def parse_site(raw: Any) -> str:
    """``site``: the one site that may run the task ("" or None: any)."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise RequirementError("site", f"must be a string, got {raw!r}")
    return raw


def parse_os(raw: Any) -> list[str]:
    """``os``: a list of OS names (``RHEL_7_x86_64``); one string or nothing is allowed too."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
        raise RequirementError("os", f"must be a list of strings, got {raw!r}")
    return list(raw)


_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_SIZE_RE = re.compile(rf"^\s*({_NUMBER})\s*([a-zA-Z]*)\s*$")
_SIZE_UNITS: dict[str, float] = {
    "": 1.0, "g": 1.0, "gb": 1.0, "b": 1e-9, "k": 1e-6, "kb": 1e-6, "m": 1e-3, "mb": 1e-3,
    "t": 1e3, "tb": 1e3, "kib": 1024 / 1e9, "mib": 1024**2 / 1e9, "gib": 1024**3 / 1e9,
    "tib": 1024**4 / 1e9,
}
_DURATION_RE = re.compile(rf"({_NUMBER})\s*([a-zA-Z]*)")
_DURATION_UNITS: dict[str, float] = {
    "": 1.0, "h": 1.0, "hr": 1.0, "hrs": 1.0, "hour": 1.0, "hours": 1.0,
    "m": 1 / 60, "min": 1 / 60, "mins": 1 / 60, "minute": 1 / 60, "minutes": 1 / 60,
    "s": 1 / 3600, "sec": 1 / 3600, "secs": 1 / 3600, "second": 1 / 3600, "seconds": 1 / 3600,
    "d": 24.0, "day": 24.0, "days": 24.0,
}


def _plain_number(text: Any, what: str) -> float | None:
    if isinstance(text, bool):
        raise ValueError(f"expected a {what}, got {text!r}")
    if isinstance(text, (int, float)):
        if not math.isfinite(text):
            raise ValueError(f"expected a finite {what}, got {text!r}")
        return float(text)
    if not isinstance(text, str):
        raise ValueError(f"expected a {what} (number or string), got {type(text).__name__}")
    return None


def parse_size(text: str | float | int) -> float:
    """GB from ``4``, ``"4GB"``, ``"512MB"``, ``"2G"``, ``"1.5"``, ``"1GiB"``.

    Units are decimal, as IceProd's conversion ``request_memory = GB * 1000``
    is: ``"512MB"`` is 0.512 GB and becomes ``request_memory = 512`` again.
    ``KiB``/``MiB``/``GiB``/``TiB`` are binary.  A bare number is GB.
    """
    number = _plain_number(text, "size")
    if number is not None:
        return number
    match = _SIZE_RE.match(str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise ValueError(f"cannot read size {text!r}; use a number of GB or e.g. '4GB', '512MB', '2G'")
    return float(match.group(1)) * _SIZE_UNITS[unit]


def parse_duration(text: str | float | int) -> float:
    """Hours from ``1.5``, ``"2h"``, ``"90m"``, ``"3600s"``, ``"1d"``, ``"1h30m"``."""
    number = _plain_number(text, "duration")
    if number is not None:
        return number
    stripped = str(text).strip()
    parts = list(_DURATION_RE.finditer(stripped))
    if not parts or "".join(p.group(0) for p in parts).replace(" ", "") != stripped.replace(" ", ""):
        raise ValueError(f"cannot read duration {text!r}; use hours or e.g. '2h', '90m', '3600s', '1h30m'")
    if len(parts) > 1 and any(not p.group(2) for p in parts):
        raise ValueError(f"cannot read duration {text!r}: every part of a compound duration needs a unit")
    hours = 0.0
    for part in parts:
        unit = part.group(2).lower()
        if unit not in _DURATION_UNITS:
            raise ValueError(f"cannot read duration {text!r}: unknown unit {part.group(2)!r}")
        hours += float(part.group(1)) * _DURATION_UNITS[unit]
    return hours


def escalate(current: float, measured_peak: float, cap: float | None, factor: float = 1.5) -> float:
    """New requirement after a resource failure: max(current, factor x peak),
    capped, and never below ``current`` (a cap under ``current`` keeps current)."""
    for name, value in (("current", current), ("measured_peak", measured_peak)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"escalate: {name} must be a finite number >= 0, got {value!r}")
    if factor < 1:
        raise ValueError(f"escalate: factor must be >= 1 (requirements never shrink), got {factor!r}")
    # Up to the next 1/1000 of a unit, never below factor x peak (rounding to
    # nearest made 1.5 x 0.0008 h 0.001 h); the epsilon keeps 1.5*3.2 at 4.8.
    wanted = max(current, math.ceil(factor * measured_peak * 1000 - 1e-6) / 1000)
    if cap is not None:
        wanted = min(wanted, cap)
    return max(current, wanted)


def escalate_requirements(requirements: Mapping[str, Any], measured: Mapping[str, Any],
                          caps: Mapping[str, Any], kinds: Iterable[str],
                          factor: float = 1.5) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Raise the ``kinds`` (memory/disk/time) of ``requirements`` after a failure.

    ``measured`` holds the peaks the pilot saw; when a peak is missing (a
    kernel OOM kill may leave none) the task died at its limit, so the current
    requirement stands in for the peak and the bump is ``factor`` x current.
    Returns the new requirements (a copy; other keys untouched) and, for
    provenance, ``{kind: {"old", "new", "measured", "cap", "factor", "capped"}}``
    for every kind that changed.
    """
    wanted = set(kinds)
    unknown = wanted - ESCALATABLE
    if unknown:
        raise ValueError(f"only {', '.join(sorted(ESCALATABLE))} are escalated, not {', '.join(sorted(unknown))}")
    current = Resources.from_requirements(requirements)
    new = dict(requirements)
    changes: dict[str, dict[str, Any]] = {}
    for kind in sorted(wanted):
        old = float(getattr(current, kind))
        peak = _measure(kind, measured.get(kind), old)
        cap = None if caps.get(kind) is None else _measure(kind, caps[kind], old, label="cap")
        value = escalate(old, peak, cap, factor)
        if value != old:
            new[kind] = value
            changes[kind] = {"old": old, "new": value, "measured": peak, "cap": cap, "factor": factor,
                             "capped": cap is not None and value == cap and factor * peak > cap}
    return new, changes


def _measure(kind: str, raw: Any, default: float, label: str = "measured") -> float:
    if raw is None:
        return default
    try:
        return parse_duration(raw) if kind == "time" else parse_size(raw)
    except ValueError as exc:
        raise ValueError(f"{label} {kind}: {exc}") from None


def _bin_up(value: float, bins: tuple[float, ...], growth: tuple[float, ...]) -> float:
    for edge in bins:
        if value <= edge + _EPS:
            return edge
    edge, step = bins[-1], 0
    while value > edge + _EPS:
        edge *= growth[step % len(growth)]
        step += 1
    return edge


_SIZE_GROWTH = (1.5, 4 / 3)
_TIME_GROWTH = (2.0,)


def _fmt(value: float) -> str:
    return f"{value:g}"


def resource_class(res: Resources) -> str:
    """A coarse class name for grouping tasks (``cpu1-mem2-disk10-t4``).

    Memory, disk and time round UP to a few bins so that pilot demand has a
    handful of shapes instead of one per distinct request; cpu and gpu are
    kept exact (``-gpuN`` appears only for GPU tasks).
    """
    parts = [f"cpu{res.cpu}"]
    if res.gpu:
        parts.append(f"gpu{res.gpu}")
    parts.append("mem" + _fmt(_bin_up(res.memory, MEMORY_BINS, _SIZE_GROWTH)))
    parts.append("disk" + _fmt(_bin_up(res.disk, DISK_BINS, _SIZE_GROWTH)))
    parts.append("t" + _fmt(_bin_up(res.time, TIME_BINS, _TIME_GROWTH)))
    return "-".join(parts)


_CLASS_RE = re.compile(r"^cpu(\d+)(?:-gpu(\d+))?-mem([0-9.]+)-disk([0-9.]+)-t([0-9.]+)$")


def class_ceiling(cls: str) -> Resources:
    """The largest need in class ``cls``: a slot with this much free runs any of its tasks."""
    match = _CLASS_RE.match(cls)
    if not match:
        raise ValueError(f"not a resource class: {cls!r} (expected like 'cpu1-mem2-disk10-t4')")
    cpu, gpu, mem, disk, hours = match.groups()
    try:
        return Resources(cpu=int(cpu), gpu=int(gpu or 0), memory=float(mem), disk=float(disk), time=float(hours))
    except ValueError:
        raise ValueError(f"not a resource class: {cls!r} (bad number)") from None


# IceProd's HTCondor time categories (reference §6.4): (max hours,
# OriginalTime s, GPUJobLength, JobDurationCategory).
_CONDOR_TIME = (
    (4, 14400, "short", "Medium"),
    (12, 43200, "short", "Medium"),
    (24, 86400, "medium", "Medium"),
    (40, 144000, "long", "Long"),
    (168, 604800, "long", "XLong"),
)


def condor_time_category(hours: float) -> dict[str, Any]:
    """HTCondor ads for a task's time request, as IceProd submits them.

    IceProd sets ``+is_resumable = True`` only for jobs up to 4 h; frazil
    always returns the key (False above 4 h) so renderers need no branch.
    """
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"time must be a finite number of hours >= 0, got {hours!r}")
    for limit, seconds, gpu_length, category in _CONDOR_TIME:
        if hours <= limit:
            return {"OriginalTime": seconds, "GPUJobLength": gpu_length,
                    "is_resumable": limit == 4, "JobDurationCategory": category}
    return {"OriginalTime": 1209600, "GPUJobLength": "long", "is_resumable": False, "JobDurationCategory": "XLong"}
