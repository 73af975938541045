"""HTCondor provider against a fake schedd with the bindings' signatures:
demand → submits of the right number and shape, held → removed and recorded,
surplus idle → removed, every description accepted by htcondor2.Submit."""
from __future__ import annotations

import inspect
import os
import stat
import time
from pathlib import Path

import classad2
import htcondor2
import pytest

from server.provisioning.base import JobState, PilotShape
from server.provisioning.demand import QueuedClass, RegisteredPilot, SiteConfig, plan
from server.provisioning.htcondor import (
    CondorOptions, CondorProvider, DescriptionError, DescriptionRenderer, build_submit,
)
from tests.provisioning.condor_event_log import event_text
from tests.provisioning.fake_schedd import FakeSchedd

URL = "https://frazil.example.org:8080"


def provider(tmp_path: Path, schedd: FakeSchedd, **options) -> CondorProvider:
    opts = CondorOptions(server_url=URL, submit_dir=tmp_path / "condor", **options)
    return CondorProvider(options=opts, schedd_factory=lambda: schedd, mint_token=lambda: "secret-token-xyz")


def qc(queued: int, *, cpu=1, gpu=0, memory=2.0, disk=4.0, time=4.0, site="", os=()) -> QueuedClass:
    return QueuedClass(cpu=cpu, gpu=gpu, memory=memory, disk=disk, time=time, site=site, os=tuple(os), queued=queued)


def test_fake_schedd_has_the_bindings_signatures():
    for name in ("submit", "query", "history", "act"):
        real = inspect.signature(getattr(htcondor2.Schedd, name))
        fake = inspect.signature(getattr(FakeSchedd, name))
        assert list(real.parameters) == list(fake.parameters), name
        for param in real.parameters.values():
            if param.default is not inspect.Parameter.empty and name != "submit":
                assert fake.parameters[param.name].default == param.default or param.name == "opts", (name, param)


@pytest.mark.parametrize("bootstrap", ["container", "shared", "bundle"])
@pytest.mark.parametrize("shape", [
    PilotShape(cpu=1, memory=2, disk=4, time=5, site=""),
    PilotShape(cpu=4, gpu=1, memory=12, disk=20, time=30, site="CHTC", os=("RHEL_9_x86_64",)),
    PilotShape(cpu=2, memory=0.5, disk=1, time=200, site="DESY-HH"),
])
def test_every_description_is_accepted_by_htcondor2_submit(tmp_path, bootstrap, shape):
    options = CondorOptions(server_url=URL, submit_dir=tmp_path, bootstrap=bootstrap,
                            site_lines={"CHTC": ['+AccountingGroup = "icecube.prod"']})
    text = DescriptionRenderer(options).render(shape, tmp_path / "x", tmp_path / "x" / "frazil.token")
    submit = build_submit(text)
    assert submit["request_cpus"] == str(shape.cpu)
    assert submit["request_memory"] == str(int(shape.memory * 1000))
    assert submit["request_disk"] == str(int(shape.disk * 1e6 + 1e6))
    assert classad2.ExprTree(submit["MY.FrazilPilot"]).eval() is True
    assert classad2.ExprTree(submit["MY.FrazilSite"]).eval() == shape.site
    assert classad2.ExprTree(submit["MY.FrazilShape"]).eval() == shape.name
    assert submit["transfer_input_files"].endswith("frazil.token")
    assert "token" not in submit["arguments"].replace("--token-file frazil.token", "")
    assert "secret" not in text
    requirements = submit["requirements"]
    if shape.gpu:
        assert submit["request_gpus"] == str(shape.gpu)
        assert "GPUs_Capability >= 6.1" in requirements
        assert classad2.ExprTree(submit["MY.GPUJobLength"]).eval() in ("short", "medium", "long")
    else:
        assert "request_gpus" not in submit.keys()
    if shape.site:
        assert f'GLIDEIN_Site =?= "{shape.site}"' in requirements
    if bootstrap == "container":
        assert classad2.ExprTree(submit["MY.SingularityImage"]).eval().startswith("/cvmfs/")
    else:
        assert "MY.SingularityImage" not in submit.keys()
    if bootstrap == "bundle":
        assert submit["executable"].endswith(".pyz") and submit["transfer_executable"] == "true"
    category = classad2.ExprTree(submit["MY.JobDurationCategory"]).eval()
    assert category == {5: "Medium", 30: "Long", 200: "XLong"}[int(shape.time)]
    if shape.site == "CHTC":
        assert classad2.ExprTree(submit["MY.AccountingGroup"]).eval() == "icecube.prod"


def test_a_broken_description_is_refused_before_the_schedd():
    with pytest.raises(DescriptionError, match="ClassAd expression"):
        build_submit("executable = /bin/true\nrequest_cpus = 1\nrequest_memory = 1\nrequest_disk = 1\n"
                     "+FrazilPilot = (((\n")
    with pytest.raises(DescriptionError, match="not a number"):
        build_submit("executable = /bin/true\nrequest_cpus = lots\nrequest_memory = 1\nrequest_disk = 1\n"
                     "+FrazilPilot = true\n")
    with pytest.raises(ValueError, match="pilot_image"):
        CondorOptions(server_url=URL, submit_dir=Path("/tmp"), image='x" && true')


async def test_demand_becomes_bulk_submits_of_the_right_shape(tmp_path):
    schedd = FakeSchedd()
    condor = provider(tmp_path, schedd)
    sites = [SiteConfig("CHTC", max_idle=10, max_per_cycle=20, ramp_up=8)]
    classes = [qc(5, memory=2, time=4), qc(2, cpu=2, gpu=1, memory=8, time=10)]
    await condor.status()
    result = plan(classes, sites, condor.jobs(), [], now=0)
    for shape, count in result.submit:
        await condor.submit(shape, count)
    assert len(schedd.submits) == 2  # one bulk submit per shape
    by_gpu = {bool(int(call.description["request_gpus"]) if "request_gpus" in call.description.keys() else 0): call
              for call in schedd.submits}
    assert len(by_gpu[True].itemdata) == 2 and len(by_gpu[False].itemdata) == 5
    assert by_gpu[False].description["request_memory"] == "2000"
    assert by_gpu[True].description["request_cpus"] == "2"
    assert [item["pilot_index"] for item in by_gpu[False].itemdata] == ["0", "1", "2", "3", "4"]
    token = Path(by_gpu[False].description["transfer_input_files"])
    assert token.read_text().strip() == "secret-token-xyz"
    assert stat.S_IMODE(os.stat(token).st_mode) == 0o600
    states = await condor.status()
    assert sorted(states.values()) == [JobState.PENDING] * 7
    # next round: the same demand is covered by the idle pilots -> nothing new
    again = plan(classes, sites, condor.jobs(), [], now=0)
    assert again.submit == [] and again.cancel == []
    # pilots found again from their ClassAds by a fresh provider (server restart / another replica)
    fresh = provider(tmp_path, schedd)
    await fresh.status()
    assert sorted(j.shape.name for j in fresh.jobs()) == sorted(j.shape.name for j in condor.jobs())
    assert {j.shape.site for j in fresh.jobs()} == {"CHTC"}


async def test_site_limits_and_ramp_up(tmp_path):
    schedd = FakeSchedd()
    condor = provider(tmp_path, schedd)
    site = SiteConfig("OSG", max_idle=5, max_running=12, max_per_cycle=4, ramp_up=2)
    classes = [qc(100)]
    first = plan(classes, [site], condor.jobs(), [], now=0)
    assert first.submitted == 2  # an unproven site gets the ramp-up only
    for shape, n in first.submit:
        await condor.submit(shape, n)
    for job_id in list(schedd.queue):
        schedd.set_status(job_id, 2)
    await condor.status()
    pilots = [RegisteredPilot(site="OSG", free=PilotShape().resources.with_time(0), busy=True)] * 2
    second = plan(classes, [site], condor.jobs(), pilots, now=10**10)
    assert second.submitted == 2  # as many as already run, within max_per_cycle
    for shape, n in second.submit:
        await condor.submit(shape, n)
    for job_id in list(schedd.queue)[2:]:
        schedd.set_status(job_id, 2)
    await condor.status()
    third = plan(classes, [site], condor.jobs(), [], now=10**10)
    assert third.submitted == 4  # max_per_cycle
    for shape, n in third.submit:
        await condor.submit(shape, n)
    await condor.status()
    fourth = plan(classes, [site], condor.jobs(), [], now=10**10)
    assert fourth.submitted == 1  # max_idle 5 with 4 idle
    for shape, n in fourth.submit:
        await condor.submit(shape, n)
    for job_id in list(schedd.queue):
        schedd.set_status(job_id, 2)
    await condor.status()
    fifth = plan(classes, [site], condor.jobs(), [], now=10**10)
    assert fifth.submitted == 3  # max_running 12 with 9 running


async def test_held_pilots_are_released_or_removed_by_hold_reason(tmp_path):
    schedd = FakeSchedd()
    condor = provider(tmp_path, schedd)
    ids = await condor.submit(PilotShape(memory=2, disk=4, time=5, site="CHTC"), 4)
    await condor.status()
    schedd.set_status(ids[0], 5, HoldReason="Error from slot1@node7: memory limit exceeded", HoldReasonCode=34)
    schedd.set_status(ids[1], 2)
    schedd.set_status(ids[2], 5, HoldReason="Transfer input files failure", HoldReasonCode=13)
    schedd.set_status(ids[3], 5, HoldReason="via condor_hold (by user alice)", HoldReasonCode=1)
    acts_before = len(schedd.acts)
    states = await condor.status()
    # status() only reads: the held pilots are reported, nothing is acted on
    assert states == {ids[0]: JobState.HELD, ids[1]: JobState.RUNNING, ids[2]: JobState.HELD,
                      ids[3]: JobState.HELD}
    assert len(schedd.acts) == acts_before
    await condor.handle_held()
    by_action = {action: (removed, reason) for action, removed, reason in schedd.acts[acts_before:]}
    assert by_action[htcondor2.JobAction.Remove][0] == [ids[0]]  # out of memory: a retry would fail again
    assert by_action[htcondor2.JobAction.Release][0] == [ids[2]]  # a transfer hiccup: released
    assert ids[3] in schedd.queue and int(schedd.queue[ids[3]]["JobStatus"]) == 5  # the operator's hold stays
    assert ids[0] not in schedd.queue and ids[0] in schedd.history_ads
    counts = condor.counts()
    assert counts.removed_held[0]["reason"] == "Error from slot1@node7: memory limit exceeded"
    assert counts.removed_held[0]["site"] == "CHTC"
    assert (counts.submitted, counts.idle, counts.running, counts.held, counts.done) == (4, 1, 1, 1, 1)
    assert counts.released_held == 1 and counts.ended == {"cancelled": 1}
    # the release shows in the event log; a pilot held again too often is removed
    assert (await condor.status())[ids[2]] == JobState.PENDING
    for _ in range(3):
        schedd.set_status(ids[2], 5, HoldReason="Transfer input files failure", HoldReasonCode=13)
        await condor.status()
        await condor.handle_held()
    assert ids[2] not in schedd.queue and condor.counts().released_held == 3
    # a pilot that ended is seen in the event log
    schedd.finish(ids[1], exit_code=0)
    await condor.status()
    assert condor.counts().running == 0 and [j.job_id for j in condor.jobs()] == [ids[3]]
    assert condor.counts().ended == {"cancelled": 2, "completed": 1}


async def test_surplus_idle_pilots_are_removed(tmp_path):
    schedd = FakeSchedd()
    condor = provider(tmp_path, schedd)
    site = SiteConfig("CHTC", max_idle=10, ramp_up=10)
    result = plan([qc(6)], [site], [], [], now=0)
    for shape, n in result.submit:
        await condor.submit(shape, n)
    schedd.set_status("100.0", 2)
    await condor.status()
    # the queue drained to 2 tasks: the pilot that just started covers one, one idle pilot the other
    shrink = plan([qc(2)], [site], condor.jobs(), [], now=time.time())
    assert shrink.submit == [] and len(shrink.cancel) == 4
    assert "100.0" not in shrink.cancel
    await condor.cancel(shrink.cancel, "idle surplus")
    action, removed, reason = schedd.acts[-1]
    assert action == htcondor2.JobAction.Remove and sorted(removed) == sorted(shrink.cancel)
    assert reason == "frazil: idle surplus"
    await condor.status()
    assert sorted(j.state for j in condor.jobs()) == [JobState.PENDING, JobState.RUNNING]
    # nothing queued at all: the last idle pilot goes too, the running one stays
    empty = plan([], [site], condor.jobs(), [], now=10**10)
    assert len(empty.cancel) == 1 and "100.0" not in empty.cancel


async def test_schedd_failures_are_provider_errors(tmp_path):
    from server.provisioning.base import ProviderError

    class Broken(FakeSchedd):
        def query(self, constraint='True', projection=[], callback=None, limit=-1,
                  opts=htcondor2.QueryOpt.Default):
            raise htcondor2.HTCondorException("Failed to connect to schedd")

    condor = provider(tmp_path, Broken())
    with pytest.raises(ProviderError, match="HTCondor query failed: Failed to connect"):
        await condor.status()
    unreachable = CondorProvider(options=CondorOptions(server_url=URL, submit_dir=tmp_path),
                                 schedd_factory=lambda: (_ for _ in ()).throw(RuntimeError("no collector")),
                                 mint_token=lambda: "t")
    with pytest.raises(ProviderError, match="cannot reach the HTCondor schedd: no collector"):
        await unreachable.status()


async def test_old_submit_dirs_and_their_tokens_are_pruned(tmp_path):
    schedd = FakeSchedd()
    condor = provider(tmp_path, schedd)
    await condor.submit(PilotShape(site="A"), 1)
    await condor.submit(PilotShape(site="B"), 1)
    old, new = sorted(p for p in (tmp_path / "condor").iterdir() if p.is_dir())
    long_ago = time.time() - 9 * 86400
    os.utime(old, (long_ago, long_ago))
    await condor.status()
    assert old.exists()  # status() only reads
    await condor.housekeeping()  # the demand loop's clean-up step
    assert not old.exists() and (new / "frazil.token").exists()
    assert (tmp_path / "condor" / "pilots.jel").exists()


async def test_many_vanished_pilots_are_looked_up_in_chunks(tmp_path, monkeypatch):
    import server.provisioning.htcondor as module
    monkeypatch.setattr(module, "HISTORY_CHUNK", 2)
    schedd = FakeSchedd()
    condor = provider(tmp_path, schedd)
    ids = await condor.submit(PilotShape(site="A"), 5)
    calls = []
    real_history = schedd.history

    def history(constraint=None, projection=[], match=-1, since=None):
        calls.append(match)
        return real_history(constraint, projection, match, since)
    schedd.history = history
    await condor.status()
    for job_id in ids:
        schedd.finish(job_id, exit_code=0)
    (tmp_path / "condor" / "pilots.jel").unlink()  # a log lost: only the query and history can tell
    fresh = provider(tmp_path, schedd)
    fresh._jobs = dict(condor._jobs)
    assert set((await fresh.status(ids)).values()) == {JobState.COMPLETED}
    assert calls == [2, 2, 1] and fresh.counts().done == 5


async def test_state_changes_come_from_the_event_log_not_from_queries(tmp_path):
    schedd = FakeSchedd()
    condor = provider(tmp_path, schedd)
    ids = await condor.submit(PilotShape(site="A"), 4)
    await condor.status()  # the first round queries the schedd once (pilots of an earlier run)
    queries = []
    real_query = schedd.query

    def query(*args, **kwargs):
        queries.append(args)
        return real_query(*args, **kwargs)
    schedd.query = query
    started = time.time() - 30
    # events as a schedd's shadows write them, appended by hand (not through the fake schedd)
    with open(tmp_path / "condor" / "pilots.jel", "a") as out:
        out.write(event_text("execute", ids[0], when=started))
        out.write(event_text("execute", ids[1]))
        out.write(event_text("evicted", ids[1]))
        out.write(event_text("execute", ids[2]))
        out.write(event_text("terminated", ids[2], code=3))
        out.write(event_text("execute", "999.0"))  # not one of ours
    states = await condor.status()
    assert states == {ids[0]: JobState.RUNNING, ids[1]: JobState.PENDING, ids[3]: JobState.PENDING}
    assert (await condor.status([ids[2]])) == {ids[2]: JobState.FAILED}
    assert queries == []
    [running] = [j for j in condor.jobs() if j.state == JobState.RUNNING]
    assert abs(running.started - started) < 1.5
    with open(tmp_path / "condor" / "pilots.jel", "a") as out:
        out.write(event_text("aborted", ids[3], reason="via condor_rm (by user alice)"))
        out.write(event_text("terminated", ids[0], code=0))
    await condor.status()
    assert condor.jobs() == [condor._jobs[ids[1]]] and queries == []
    assert condor.counts().ended == {"failed": 1, "cancelled": 1, "completed": 1}


def test_hold_table():
    from server.provisioning.condor_events import HoldAction, hold_action
    assert hold_action(34, 0)[0] == HoldAction.REMOVE
    assert hold_action(13, 0)[0] == HoldAction.RELEASE
    assert hold_action(13, 3)[0] == HoldAction.REMOVE
    assert hold_action(1, 0)[0] == HoldAction.KEEP
    assert hold_action(None, 0)[0] == HoldAction.REMOVE
    assert hold_action(999, 0)[0] == HoldAction.REMOVE
