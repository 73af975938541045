"""batchsys overrides: what frazil writes into pilot submit descriptions, and the group they make."""
from __future__ import annotations

import pytest

from common.batchsys import (
    BatchsysError, checked, condor_lines, group_of, is_group, pilot_words, slurm_lines, split_words, task_words,
)
from common.config.checks import check_config


def test_checked_keeps_condor_and_slurm_and_drops_other_systems():
    raw = {"condor": {"+AccountingGroup": '"icecube.prod"', "requirements": "HAS_CVMFS"},
           "slurm": {"--account": "icecube"}, "pbs": {"-q": "long"}}
    assert checked(raw) == {"condor": {"AccountingGroup": '"icecube.prod"', "requirements": "HAS_CVMFS"},
                            "slurm": {"--account": "icecube"}}
    assert checked({}) == {} and checked(None) == {} and checked({"condor": {}}) == {}
    assert condor_lines(checked(raw)) == (['+AccountingGroup = "icecube.prod"'], "HAS_CVMFS")
    assert slurm_lines(checked(raw)) == ["#SBATCH --account=icecube"]


@pytest.mark.parametrize("raw, message", [
    ({"condor": {"+FrazilPilot": "false"}}, "frazil sets this attribute"),
    ({"condor": {"+SingularityImage": '"/x"'}}, "frazil sets this attribute"),
    ({"condor": {"a b": 1}}, "is not an attribute name"),
    ({"condor": {"x": "1\nqueue 1000"}}, "one-line string"),
    ({"condor": {"x": [1]}}, "one-line string"),
    ({"slurm": {"account": "x"}}, "is not an option such as --account"),
    ({"slurm": {"--account": "x; rm -rf /"}}, "may hold only"),
    ({"condor": "x"}, "must be an object"),
    ([], "must be an object of objects"),
])
def test_what_cannot_be_written_is_named(raw, message):
    with pytest.raises(BatchsysError, match=message):
        checked(raw)


def test_groups_are_stable_and_travel_in_the_claim_words():
    one = checked({"condor": {"+AccountingGroup": '"a"', "+B": 1}})
    same = checked({"condor": {"+B": 1, "+AccountingGroup": '"a"'}})
    group = group_of(one)
    assert group == group_of(same) and is_group(group) and group_of({}) == ""
    assert group != group_of(checked({"condor": {"+AccountingGroup": '"b"'}}))
    assert task_words(group, ("RHEL_7_x86_64",)) == (f"{group}/RHEL_7_x86_64",)
    assert task_words(group, ()) == (group,) and task_words("", ("X",)) == ("X",)
    assert split_words(pilot_words(group, ["DEBIAN_12_x86_64", "container"])) == (group, ("DEBIAN_12_x86_64", "container"))
    assert split_words(("RHEL_7_x86_64",)) == ("", ("RHEL_7_x86_64",))


def test_a_config_with_unwritable_batchsys_is_refused_with_the_path():
    config = {"version": 3.2, "tasks": [{"name": "a", "batchsys": {"condor": {"+FrazilSite": '"x"'}},
                                         "trays": [{"modules": [{"src": "/bin/true"}]}]}]}
    [problem] = check_config(config)
    assert problem.path == "config['tasks'][0]['batchsys']" and "frazil sets this attribute" in problem.message


def test_steering_overrides_apply_under_the_tasks_own():
    from common.batchsys import merged
    from server.scheduling.requirements import TaskRequirements

    steering = {"condor": {"+AccountingGroup": '"icecube.prod"', "+Site": '"any"'}, "slurm": {"--qos": "normal"}}
    task = {"condor": {"+AccountingGroup": '"icecube.special"'}}
    assert merged(steering, task) == {"condor": {"+AccountingGroup": '"icecube.special"', "+Site": '"any"'},
                                      "slurm": {"--qos": "normal"}}
    assert merged({}, task) == task and merged(steering, {}) == steering
    config = {"version": 3.2, "steering": {"batchsys": steering, "parameters": {}, "data": []}, "tasks": [
        {"name": "a", "batchsys": task, "requirements": {}, "trays": []},
        {"name": "b", "requirements": {}, "trays": []}]}
    special, plain = (TaskRequirements.build(config, i).batchsys for i in (0, 1))
    assert special == checked(merged(steering, task)) and plain == checked(steering)
    bad = {**config, "steering": {"batchsys": {"condor": {"+FrazilOS": '"x"'}}}}
    assert "config['steering']['batchsys']" in [p.path for p in check_config(bad)]
