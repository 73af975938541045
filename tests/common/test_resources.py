"""Resources: units, defaults, fitting, escalation (DESIGN §3.4), classes and HTCondor time bins."""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.resources import (
    DEFAULTS,
    Resources,
    class_ceiling,
    condor_time_category,
    escalate,
    escalate_requirements,
    parse_duration,
    parse_size,
    resource_class,
)


def test_defaults_are_the_tutorials() -> None:
    assert DEFAULTS == {"cpu": 1, "gpu": 0, "memory": 1.0, "disk": 1.0, "time": 1.0}
    assert Resources.from_requirements({}) == Resources(1, 0, 1.0, 1.0, 1.0)
    assert Resources.from_requirements(None) == Resources()


def test_from_requirements_tutorial_task() -> None:
    res = Resources.from_requirements({"memory": 2, "time": 1.5, "os": ["RHEL_7_x86_64"], "site": "x"})
    assert res == Resources(cpu=1, gpu=0, memory=2.0, disk=1.0, time=1.5)
    assert res.as_dict() == {"cpu": 1, "gpu": 0, "memory": 2.0, "disk": 1.0, "time": 1.5}


def test_from_requirements_reads_units_and_blanks() -> None:
    res = Resources.from_requirements({"cpu": "4", "gpu": 1.0, "memory": "500MB", "disk": "20G",
                                       "time": "90m"})
    assert res == Resources(cpu=4, gpu=1, memory=0.5, disk=20.0, time=1.5)
    assert Resources.from_requirements({"memory": None, "disk": ""}) == Resources()


@pytest.mark.parametrize(("requirements", "message"), [
    ({"cpu": 0}, "requirements.cpu: must be at least 1"),
    ({"cpu": 1.5}, "requirements.cpu: expected a whole number"),
    ({"gpu": -1}, "requirements.gpu: expected a whole number >= 0"),
    ({"gpu": "many"}, "requirements.gpu: expected a whole number"),
    ({"memory": 0}, "requirements.memory: must be greater than 0"),
    ({"memory": "lots"}, "requirements.memory: cannot read size 'lots'"),
    ({"memory": True}, "requirements.memory: expected a number"),
    ({"disk": float("nan")}, "requirements.disk: expected a finite size"),
    ({"time": "2 fortnights"}, "requirements.time: cannot read duration"),
    ({"memory": "$eval(2*2)"}, "still holds a macro"),
    ({"time": [1]}, "requirements.time: expected a duration"),
])
def test_bad_requirements_name_the_field(requirements: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Resources.from_requirements(requirements)
    with pytest.raises(ValueError, match="must be an object"):
        Resources.from_requirements(["memory"])  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "gb"), [
    ("4GB", 4.0), ("512MB", 0.512), ("500MB", 0.5), ("2G", 2.0), ("1.5", 1.5), (3, 3.0), (0.25, 0.25),
    ("1 gb", 1.0), ("2000m", 2.0), ("1TB", 1000.0), ("1GiB", 1.073741824), ("1e3MB", 1.0),
])
def test_parse_size(text: Any, gb: float) -> None:
    assert parse_size(text) == pytest.approx(gb)


@pytest.mark.parametrize(("text", "hours"), [
    ("2h", 2.0), ("90m", 1.5), ("3600s", 1.0), ("1.5", 1.5), (4, 4.0), ("1d", 24.0),
    ("1h30m", 1.5), ("1h 30min", 1.5), ("45 minutes", 0.75),
])
def test_parse_duration(text: Any, hours: float) -> None:
    assert parse_duration(text) == pytest.approx(hours)


@pytest.mark.parametrize("text", ["", "GB", "4 XB", "-1GB", "4GB4"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read size"):
        parse_size(text)


@pytest.mark.parametrize("text", ["", "h", "2y", "1h30", "two hours"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read duration"):
        parse_duration(text)


def test_fits_and_slot_filling() -> None:
    slot = Resources(cpu=8, gpu=1, memory=16.0, disk=50.0, time=24.0)
    task = Resources(cpu=2, gpu=0, memory=4.8, disk=10.0, time=8.0)
    assert task.fits(slot)
    free = slot
    for _ in range(3):
        free = free.subtract(task)
    assert free == Resources(cpu=2, gpu=1, memory=1.6, disk=20.0, time=24.0)  # time is not consumed
    assert not task.fits(free)
    with pytest.raises(ValueError, match="does not fit"):
        free.subtract(task)
    assert free.add(task).add(task).add(task) == slot
    assert not Resources(time=25.0).fits(slot)
    assert not Resources(gpu=2).fits(slot)
    assert Resources(memory=16.0).fits(slot)  # equal fits
    assert slot.with_time(-0.5).time == -0.5


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cpu": -1}, "cpu must be a whole number"),
    ({"gpu": 1.0}, "gpu must be a whole number"),
    ({"memory": -1.0}, "memory must be >= 0"),
    ({"disk": float("inf")}, "disk must be a finite number"),
])
def test_resources_validate_fields(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Resources(**kwargs)


@pytest.mark.parametrize(("current", "peak", "cap", "expected"), [
    (2.0, 3.2, None, 4.8),      # reference §6.5's example: RSS 3.2 GB -> 4.8
    (2.0, 3.2, 4.0, 4.0),       # capped
    (8.0, 3.2, None, 8.0),      # never shrinks
    (8.0, 9.0, 6.0, 8.0),       # current above the cap stays
    (1.0, 0.0, None, 1.0),
    (1.5, 1.5, None, 2.25),
])
def test_escalate(current: float, peak: float, cap: float | None, expected: float) -> None:
    assert escalate(current, peak, cap) == expected


def test_escalate_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="measured_peak must be"):
        escalate(1.0, -2.0, None)
    with pytest.raises(ValueError, match="factor must be >= 1"):
        escalate(1.0, 2.0, None, factor=0.5)


def test_escalate_requirements_records_provenance() -> None:
    requirements = {"memory": "2GB", "time": 1.5, "os": ["RHEL_7_x86_64"]}
    new, changes = escalate_requirements(requirements, {"memory": 3.2, "disk": 99.0}, {"memory": 16},
                                         {"memory"})
    assert new == {"memory": 4.8, "time": 1.5, "os": ["RHEL_7_x86_64"]}
    assert requirements["memory"] == "2GB"  # input untouched
    assert changes == {"memory": {"old": 2.0, "new": 4.8, "measured": 3.2, "cap": 16.0,
                                  "factor": 1.5, "capped": False}}


def test_escalate_requirements_cap_and_missing_peak() -> None:
    # time kill without a measured peak: the task died at its limit
    new, changes = escalate_requirements({"time": 2}, {}, {"time": "2.5h"}, ["time"])
    assert new == {"time": 2.5}
    assert changes["time"]["capped"] is True and changes["time"]["measured"] == 2.0
    # already at the cap: nothing changes, nothing recorded
    new, changes = escalate_requirements({"disk": 50}, {"disk": 80}, {"disk": 50}, ["disk"])
    assert new == {"disk": 50} and changes == {}


def test_escalate_requirements_refuses_cpu() -> None:
    with pytest.raises(ValueError, match="only disk, memory, time are escalated, not cpu"):
        escalate_requirements({"cpu": 1}, {"cpu": 3.0}, {}, {"cpu"})
    with pytest.raises(ValueError, match="measured memory: cannot read size"):
        escalate_requirements({}, {"memory": "a lot"}, {}, {"memory"})


@pytest.mark.parametrize(("res", "cls"), [
    (Resources(), "cpu1-mem1-disk1-t1"),
    (Resources(memory=2.0, disk=10.0, time=4.0), "cpu1-mem2-disk10-t4"),
    (Resources(memory=1.9, disk=9.5, time=3.2), "cpu1-mem2-disk10-t4"),
    (Resources(memory=0.3, disk=0.1, time=0.1), "cpu1-mem0.5-disk1-t1"),
    (Resources(memory=4.8, disk=13, time=13), "cpu1-mem6-disk16-t24"),
    (Resources(cpu=4, gpu=1, memory=70, disk=200, time=200), "cpu4-gpu1-mem96-disk256-t336"),
    (Resources(memory=64.0000000001), "cpu1-mem64-disk1-t1"),
])
def test_resource_class(res: Resources, cls: str) -> None:
    assert resource_class(res) == cls


@given(st.builds(Resources, cpu=st.integers(1, 64), gpu=st.integers(0, 8),
                 memory=st.floats(0.01, 2000), disk=st.floats(0.01, 5000), time=st.floats(0.01, 2000)))
def test_class_ceiling_holds_every_member(res: Resources) -> None:
    ceiling = class_ceiling(resource_class(res))
    assert res.fits(ceiling)
    assert resource_class(ceiling) == resource_class(res)


@pytest.mark.parametrize("cls", ["", "cpu1-mem2", "cpuX-mem1-disk1-t1", "cpu1-mem1-disk1-t1-extra"])
def test_class_ceiling_rejects(cls: str) -> None:
    with pytest.raises(ValueError, match="not a resource class"):
        class_ceiling(cls)


@pytest.mark.parametrize(("hours", "original", "gpu_length", "resumable", "category"), [
    (1.0, 14400, "short", True, "Medium"),
    (4.0, 14400, "short", True, "Medium"),
    (4.5, 43200, "short", False, "Medium"),
    (12.0, 43200, "short", False, "Medium"),
    (20.0, 86400, "medium", False, "Medium"),
    (40.0, 144000, "long", False, "Long"),
    (100.0, 604800, "long", False, "XLong"),
    (169.0, 1209600, "long", False, "XLong"),
])
def test_condor_time_category(hours: float, original: int, gpu_length: str, resumable: bool,
                              category: str) -> None:
    assert condor_time_category(hours) == {"OriginalTime": original, "GPUJobLength": gpu_length,
                                           "is_resumable": resumable, "JobDurationCategory": category}
    with pytest.raises(ValueError, match="time must be"):
        condor_time_category(float("nan"))


def test_escalation_never_rounds_below_the_factor():
    from common.resources import escalate
    assert escalate(0.0001, 0.0008, None) >= 1.5 * 0.0008
    assert escalate(1.0, 3.2, None) == 4.8
    assert escalate(1.0, 3.2, 4.0) == 4.0
