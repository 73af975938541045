"""A stand-in for ``htcondor2.Schedd`` (no HTCondor daemons exist on test machines).

Same method signatures as the bindings (checked by a test against
``inspect.signature``); it records every submit, keeps job ads as real
``classad2.ClassAd`` objects built from the submitted ``htcondor2.Submit``
(every ``MY.*`` attribute parsed as a ClassAd expression), evaluates
constraints with classad2, and moves removed jobs to the history. Like the
schedd and its shadows, it appends every state change to the job's event log
(the description's ``log``) in HTCondor's text format (:mod:`condor_event_log`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Union

import classad2
import htcondor2

from tests.provisioning.condor_event_log import event_text

_NOT_GIVEN = object()


@dataclass
class SubmitCall:
    description: htcondor2.Submit
    count: int
    itemdata: list[dict[str, str]]
    cluster: int


class FakeSchedd:
    def __init__(self) -> None:
        self.submits: list[SubmitCall] = []
        self.acts: list[tuple[htcondor2.JobAction, list[str], Optional[str]]] = []
        self.queue: dict[str, classad2.ClassAd] = {}
        self.history_ads: dict[str, classad2.ClassAd] = {}
        self._next_cluster = 100

    # ------------------------------------------------ the bindings' methods

    def submit(self, description: htcondor2.Submit, count: int = 0, spool: bool = False,
               itemdata: Union[Iterator[str], Iterator[dict], None] = _NOT_GIVEN,  # type: ignore[assignment]
               queue: str = None) -> htcondor2.SubmitResult:  # type: ignore[assignment]
        if not isinstance(description, htcondor2.Submit):
            raise TypeError("description must be an htcondor2.Submit")
        items = [{}] if itemdata is _NOT_GIVEN or itemdata is None else list(itemdata)
        per_item = count or 1
        cluster = self._next_cluster
        self._next_cluster += 1
        self.submits.append(SubmitCall(description, count, items, cluster))
        proc = 0
        for item in items:
            for _ in range(per_item):
                ad = self._job_ad(description, item, cluster, proc)
                self.queue[f"{cluster}.{proc}"] = ad
                self._log(f"{cluster}.{proc}", "submit")
                proc += 1
        return htcondor2.SubmitResult(cluster, 0, proc, classad2.ClassAd(), None)

    def query(self, constraint: Union[str, classad2.ExprTree] = 'True', projection: List[str] = [],
              callback: Callable[[classad2.ClassAd], Any] = None, limit: int = -1,
              opts: htcondor2.QueryOpt = htcondor2.QueryOpt.Default) -> List[classad2.ClassAd]:
        ads = _select(self.queue.values(), constraint, projection, limit)
        return [callback(ad) for ad in ads] if callback else ads

    def history(self, constraint: Union[str, classad2.ExprTree, None] = None, projection: List[str] = [],
                match: int = -1, since: Union[int, str, classad2.ExprTree] = None) -> List[classad2.ClassAd]:
        return _select(self.history_ads.values(), constraint or "True", projection, match)

    def act(self, action: htcondor2.JobAction, job_spec: Union[List[str], str, classad2.ExprTree, int],
            reason: str = None) -> classad2.ClassAd:
        ids = [job_spec] if isinstance(job_spec, str) else list(job_spec)
        self.acts.append((action, ids, reason))
        done = 0
        for job_id in ids:
            ad = self.queue.get(job_id)
            if ad is None:
                continue
            if action == htcondor2.JobAction.Remove:
                ad["JobStatus"] = 3
                ad["RemoveReason"] = reason or "removed"
                self._log(job_id, "aborted", reason=reason or "removed")
                self.history_ads[job_id] = self.queue.pop(job_id)
            elif action == htcondor2.JobAction.Release:
                ad["JobStatus"] = 1
                self._log(job_id, "released", reason=reason or "released")
            done += 1
        return classad2.ClassAd({"TotalSuccess": done, "TotalJobAds": len(ids)})

    # ------------------------------------------------ what the pool would do

    def set_status(self, job_id: str, status: int, **attrs: Any) -> None:
        ad = self.queue[job_id]
        ad["JobStatus"] = status
        if status == 2:
            ad["JobCurrentStartDate"] = int(time.time())
        for key, value in attrs.items():
            ad[key] = value
        if status == 2:
            self._log(job_id, "execute")
        elif status == 5:
            self._log(job_id, "held", reason=str(attrs.get("HoldReason", "held")),
                      code=int(attrs.get("HoldReasonCode", 0)))

    def finish(self, job_id: str, exit_code: int = 0) -> None:
        ad = self.queue.pop(job_id)
        ad["JobStatus"] = 4
        ad["ExitCode"] = exit_code
        self.history_ads[job_id] = ad
        self._log(job_id, "terminated", code=exit_code)

    def _log(self, job_id: str, kind: str, **details: Any) -> None:
        ad = self.queue.get(job_id) or self.history_ads.get(job_id)
        path = ad.get("log") if ad is not None else None
        if path:
            with open(path, "a") as out:
                out.write(event_text(kind, job_id, **details))

    def _job_ad(self, submit: htcondor2.Submit, item: dict[str, str], cluster: int, proc: int) -> classad2.ClassAd:
        ad = classad2.ClassAd({"ClusterId": cluster, "ProcId": proc, "JobStatus": 1, "QDate": int(time.time())})
        for key in submit.keys():
            value = submit[key]
            for name, replacement in item.items():
                value = value.replace(f"$({name})", replacement)
            if key.startswith("MY."):
                ad[key[3:]] = classad2.ExprTree(value).eval()
            elif key.lower().startswith("request_"):
                ad["Request" + key[len("request_"):].capitalize()] = float(submit.expand(key))
            elif key.lower() == "requirements":
                ad["Requirements"] = classad2.ExprTree(value)
            else:
                ad[key] = value
        return ad


def _select(ads: Any, constraint: Union[str, classad2.ExprTree], projection: List[str],
            limit: int) -> List[classad2.ClassAd]:
    expr = constraint if isinstance(constraint, classad2.ExprTree) else classad2.ExprTree(str(constraint))
    out = []
    for ad in ads:
        if expr.eval(ad) is not True:
            continue
        out.append(classad2.ClassAd({k: ad[k] for k in projection if k in ad}) if projection else ad)
        if 0 < limit <= len(out):
            break
    return out
