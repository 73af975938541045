"""The demand rules: cover by pilots already there, per-site limits, sites,
no flooding of a site whose pilots match nothing, draining for room."""
from __future__ import annotations

from common.resources import Resources
from server.provisioning.base import JobState, PilotJob
from server.provisioning.demand import (
    QueuedClass, RegisteredPilot, SiteConfig, fit_count, plan, shape_for,
)


def qc(queued: int, *, cpu=1, gpu=0, memory=1.0, disk=1.0, time=1.0, site="", os=()) -> QueuedClass:
    return QueuedClass(cpu=cpu, gpu=gpu, memory=memory, disk=disk, time=time, site=site, os=tuple(os), queued=queued)


def free(cpu=1, gpu=0, memory=1.0, disk=1.0, time=10.0) -> Resources:
    return Resources(cpu=cpu, gpu=gpu, memory=memory, disk=disk, time=time)


SITE = SiteConfig("A", max_idle=100, max_running=100, max_per_cycle=100, ramp_up=100)


def test_shape_has_a_lifetime_longer_than_the_task():
    shape = shape_for(Resources(memory=2, disk=4, time=4), "A", (), 0)
    assert shape.time > 4 and (shape.memory, shape.disk, shape.site) == (2, 4, "A")
    assert shape_for(Resources(time=1), "A", (), 24).time == 24


def test_fit_count():
    assert fit_count(free(cpu=4, memory=8, disk=10), Resources(cpu=1, memory=2)) == 4
    assert fit_count(free(cpu=4, memory=8, disk=10), Resources(cpu=2, memory=1)) == 2
    assert fit_count(free(cpu=4, memory=8, disk=1), Resources(cpu=1, memory=1)) == 1
    assert fit_count(free(cpu=4, memory=8, time=0.5), Resources(time=1)) == 0
    assert fit_count(free(cpu=4), Resources(gpu=1)) == 0


def test_registered_pilots_with_room_cover_the_queue():
    pilots = [RegisteredPilot("A", free(cpu=4, memory=4, disk=4))]
    result = plan([qc(6)], [SITE], [], pilots, now=0)
    assert result.submit == [(shape_for(Resources(), "A", (), 0), 2)]


def test_a_site_whose_pilots_match_nothing_is_not_flooded():
    # the pilot fits the tasks by size but never claims them (wrong OS, broken node): it is cover
    pilots = [RegisteredPilot("A", free(cpu=8, memory=16, disk=16))]
    for _ in range(3):
        assert plan([qc(5, os=("RHEL_7_x86_64",))], [SITE], [], pilots, now=0).submit == []


def test_pilots_that_started_moments_ago_cover_their_shape_until_they_register():
    shape = shape_for(Resources(), "A", (), 0)
    jobs = [PilotJob("1", shape, JobState.RUNNING, submitted=0, started=100.0)]
    assert plan([qc(1)], [SITE], jobs, [], now=150).submit == []
    assert plan([qc(1)], [SITE], jobs, [], now=1000).submit == [(shape, 1)]


def test_site_requirements_and_spill_over():
    a = SiteConfig("A", max_idle=3, max_running=3, max_per_cycle=10, ramp_up=10)
    b = SiteConfig("B", max_idle=10, max_running=10, max_per_cycle=10, ramp_up=10)
    result = plan([qc(5), qc(2, memory=4, site="B"), qc(4, site="C")], [a, b], [], [], now=0)
    by_site = {}
    for shape, n in result.submit:
        by_site.setdefault(shape.site, []).append((shape.memory, n))
    assert by_site["A"] == [(1.0, 3)]
    assert sorted(by_site["B"]) == [(1.0, 2), (4.0, 2)]  # site-less tasks spill to B; B-only stay at B
    assert [c.site for c in result.unserved] == ["C"]  # no such site: unserved, never submitted


def test_capacity_limits_local_pilots_and_big_classes_are_unserved():
    capacity = Resources(cpu=2, gpu=0, memory=4, disk=100, time=0)
    result = plan([qc(10), qc(3, gpu=1), qc(1, memory=8)], [SITE], [], [], now=0, capacity=capacity)
    assert sum(n for _, n in result.submit) == 2
    assert {(c.gpu, c.memory) for c in result.unserved} == {(1, 1.0), (0, 8)}


def test_idle_pilots_that_fit_nothing_are_drained_when_work_waits_for_room():
    capacity = Resources(cpu=2, gpu=0, memory=4, disk=100, time=0)
    small = shape_for(Resources(), "A", (), 0)
    jobs = [PilotJob("1", small, JobState.RUNNING, 0, 0.0), PilotJob("2", small, JobState.RUNNING, 0, 0.0)]
    pilots = [RegisteredPilot("A", free(), pilot_id="p1"), RegisteredPilot("A", free(), pilot_id="p2", busy=True)]
    result = plan([qc(1, memory=2)], [SITE], jobs, pilots, now=1000, capacity=capacity)
    assert result.submit == [] and result.drain == ["p1"]  # the busy one finishes its task
    assert plan([], [SITE], jobs, pilots, now=1000, capacity=capacity).drain == []


def test_limits_count_idle_and_running_pilots():
    site = SiteConfig("A", max_idle=2, max_running=3, max_per_cycle=10, ramp_up=10)
    shape = shape_for(Resources(), "A", (), 0)
    jobs = [PilotJob("1", shape, JobState.PENDING, 0), PilotJob("2", shape, JobState.RUNNING, 0, 0.0)]
    assert plan([qc(50)], [site], jobs, [], now=1000).submit == [(shape, 1)]
    jobs.append(PilotJob("3", shape, JobState.PENDING, 0))
    assert plan([qc(50)], [site], jobs, [], now=1000).submit == []


def test_bad_site_limits_are_refused():
    import pytest
    with pytest.raises(ValueError, match="max_idle must be a whole number"):
        SiteConfig("A", max_idle=-1)
