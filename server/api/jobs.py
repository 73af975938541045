"""Job routes (reference §4.3 "Jobs"): admin ``/jobs`` and per-dataset job listings and actions.

A job's status normally follows its tasks (roll-up); these routes are the
manual overrides IceProd offers (:mod:`server.scheduling.statuses`), after
which the dataset is rolled up at once.
"""
from __future__ import annotations

from aiohttp import web

from common import states
from server.api.errors import ApiError, not_found
from server.api.params import int_param, json_reply, list_options, page_headers, pipe_list
from server.api.user_common import HEX_ID, check_status_name, id_list, keyed, optional_body, status_body
from server.api.routing import SERVICE_ROLES, ApiRoutes, QueryParam
from server.keys import BODY, STORE
from server.scheduling import statuses
from server.store import JobFilter, NewJob

routes = ApiRoutes("jobs")

CREATE_BODY = {
    "type": "object", "required": ["dataset_id", "job_index"], "additionalProperties": False,
    "properties": {"dataset_id": {"type": "string", "minLength": 1, "maxLength": 64},
                   "job_index": {"type": "integer", "minimum": 0, "maximum": 2**31},
                   "job_id": HEX_ID,
                   "status": {"type": "string", "enum": list(states.JOB_STATUSES)}},
}
JOBS_BODY = {"type": "object", "additionalProperties": False, "properties": {"jobs": id_list("job")}}


@routes.post("/jobs", summary="create an (empty) job", roles=SERVICE_ROLES, body=CREATE_BODY, responses={201: "created"})
async def create_job(request: web.Request) -> web.Response:
    data = request[BODY]
    job = NewJob(job_index=data["job_index"], tasks=[], status=data.get("status", "processing"))
    if "job_id" in data:
        job.job_id = data["job_id"]
    if not await request.app[STORE].create_jobs(data["dataset_id"], [job]):
        raise ApiError(409, f"job {data['job_index']} of dataset {data['dataset_id']} (or job_id) already exists")
    return json_reply({"result": job.job_id}, status=201)


@routes.get("/jobs/{job_id}", summary="one job", roles=SERVICE_ROLES)
async def get_job(request: web.Request) -> web.Response:
    job = await request.app[STORE].get_job(request.match_info["job_id"])
    if job is None:
        raise not_found("Job not found")
    return json_reply(job.to_doc())


@routes.patch("/jobs/{job_id}", summary="set a job's status without the state machine; returns the new doc",
              roles=SERVICE_ROLES, body={"type": "object", "required": ["status"], "additionalProperties": False,
                                 "properties": {"status": {"type": "string", "enum": list(states.JOB_STATUSES)}}})
async def patch_job(request: web.Request) -> web.Response:
    job = await statuses.force_job(request.app[STORE], request.match_info["job_id"], request[BODY]["status"])
    return json_reply(job.to_doc())


@routes.get("/datasets/{dataset_id}/jobs", summary="jobs of a dataset, keyed by job_id", right="read",
            query=[QueryParam("status", "pipe-separated job statuses"),
                   QueryParam("job_index", "one job index", {"type": "integer"}),
                   QueryParam("keys", "pipe-separated fields"), QueryParam("limit", "page size", {"type": "integer"}),
                   QueryParam("after", "cursor from X-Next-Cursor")])
async def list_jobs(request: web.Request) -> web.Response:
    flt = JobFilter(dataset_id=request.match_info["dataset_id"],
                    status=pipe_list(request, "status", states.JOB_STATUSES, "job"),
                    job_index=int_param(request, "job_index", minimum=0, maximum=2**31))
    page = await request.app[STORE].list_jobs(flt, list_options(request))
    return json_reply(keyed(page.rows, "job_id"), headers=page_headers(page.next_cursor))


@routes.get("/datasets/{dataset_id}/jobs/{job_id}", summary="one job of a dataset", right="read")
async def get_dataset_job(request: web.Request) -> web.Response:
    job = await statuses.job_of_dataset(request.app[STORE], request.match_info["dataset_id"],
                                        request.match_info["job_id"])
    return json_reply(job.to_doc())


@routes.put("/datasets/{dataset_id}/jobs/{job_id}/status", summary="set a job's status (state machine enforced)",
            right="write", body=status_body("job"))
async def put_job_status(request: web.Request) -> web.Response:
    await statuses.set_job_status(request.app[STORE], request.match_info["dataset_id"], request.match_info["job_id"],
                                  request[BODY]["status"])
    return json_reply({})


@routes.post("/datasets/{dataset_id}/job_actions/bulk_status/{status}",
             summary="move the listed jobs from allowed statuses to {status}; 404 if none moved", right="write",
             body={"type": "object", "required": ["jobs"], "additionalProperties": False,
                   "properties": {"jobs": {**id_list("job"), "minItems": 1}}})
async def bulk_status(request: web.Request) -> web.Response:
    status = check_status_name("job", request.match_info["status"])
    await statuses.bulk_jobs(request.app[STORE], request.match_info["dataset_id"], status, request[BODY]["jobs"],
                             must_change=True)
    return json_reply({})


async def _bulk(request: web.Request, status: str, force: bool) -> web.Response:
    body = await optional_body(request, JOBS_BODY)
    await statuses.bulk_jobs(request.app[STORE], request.match_info["dataset_id"], status, body.get("jobs"),
                             force=force)
    return json_reply({})


@routes.post("/datasets/{dataset_id}/job_actions/bulk_suspend",
             summary="suspend jobs (body {jobs} optional: all jobs of the dataset)", right="write")
async def bulk_suspend(request: web.Request) -> web.Response:
    return await _bulk(request, "suspended", False)


@routes.post("/datasets/{dataset_id}/job_actions/bulk_reset",
             summary="suspended/errors jobs back to processing (body {jobs} optional)", right="write")
async def bulk_reset(request: web.Request) -> web.Response:
    return await _bulk(request, "processing", False)


@routes.post("/datasets/{dataset_id}/job_actions/bulk_hard_reset",
             summary="any job back to processing (body {jobs} optional)", right="write")
async def bulk_hard_reset(request: web.Request) -> web.Response:
    return await _bulk(request, "processing", True)


@routes.get("/datasets/{dataset_id}/job_summaries/status", summary="{status: [job_id, ...]}", right="read")
async def job_summaries(request: web.Request) -> web.Response:
    summary = await request.app[STORE].job_status_summary(request.match_info["dataset_id"])
    return json_reply({s: summary[s] for s in states.JOB_STATUSES if s in summary})


@routes.get("/datasets/{dataset_id}/job_counts/status", summary="{status: count}", right="read")
async def job_counts(request: web.Request) -> web.Response:
    counts = await request.app[STORE].job_counts_by_status(request.match_info["dataset_id"])
    return json_reply({s: counts[s] for s in states.JOB_STATUSES if s in counts})

