"""The screens of long work (issue 14 item 10): "Việc chạy nền" lists the person's jobs, a job's
page follows one with a progress bar, and the file a finished export left is downloaded from it.

The job page polls itself with htmx every second while the job runs (the fragment
``_job.html`` replaces itself, and stops asking once the job has ended); without JavaScript the
page refreshes itself every few seconds. A job is its starter's alone: anyone else gets 404.
"""

from __future__ import annotations

from starlette.routing import Route

from core import background
from core.db import run_db
from web.background import file_response
from web.guards import require
from web.templating import render

POLL_SECONDS = 1


@require()
async def job_list(request):
    jobs = await run_db(background.listing, request.state.actor.id)
    return await render(request, "core/background/list.html", {"jobs": jobs, "keep_days": background.KEEP_DAYS})


@require()
async def job_page(request):
    job = await run_db(background.get, request.state.actor.id, request.path_params["id"])
    return await render(request, "core/background/job.html", {"job": job, "poll_seconds": POLL_SECONDS},
                        partial="core/background/_job.html")


@require()
async def job_download(request):
    data, name, media_type = await run_db(background.download, request.state.actor.id, request.path_params["id"])
    return file_response(data, name, media_type)


ROUTES = [
    Route("/jobs", job_list, methods=["GET"], name="background_jobs"),
    Route("/jobs/{id:int}", job_page, methods=["GET"], name="background_job"),
    Route("/jobs/{id:int}/download", job_download, methods=["GET"], name="background_job_download"),
]
