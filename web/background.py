"""Routes hand long work to ``core.background`` through ``follow`` (issue 14 item 10).

The request waits ``FOLLOW_AFTER`` seconds. Work over by then is answered by the route's own
``answer(outcome)`` — the same file or redirect as before there were background jobs, and a
refusal (``BaocaoError``) reaches the route as it always did. Longer work goes on in its job
thread and the person is sent (303) to its page, ``/jobs/{id}``, where a bar follows it.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Awaitable, Callable
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from core import background
from core.db import run_db

FOLLOW_AFTER = 1.0  # seconds: the "longer than a second"


async def follow(request, *, kind: str, title: str, title_params: dict | None = None,
                 work: Callable[[background.Progress], background.Outcome],
                 answer: Callable[[background.Outcome], Response], back_url: str = "") -> Response:
    """Run ``work`` as a job of the signed-in person; ``answer`` its outcome if it is quick."""
    job = await run_db(background.create, request.state.actor.id, kind, title, title_params, back_url=back_url)
    handle = background.start(job, work)
    running = asyncio.wrap_future(handle.future)
    try:
        outcome = await asyncio.wait_for(asyncio.shield(running), timeout=FOLLOW_AFTER)
    except asyncio.TimeoutError:
        if handle.detach():
            return RedirectResponse(f"/jobs/{job.id}", status_code=303)
        outcome = await running  # it ended between the timeout and the detach
    response = answer(outcome)
    return await response if inspect.isawaitable(response) else response


async def export(request, *, kind: str, title: str, build: Callable[[], tuple[bytes | None, str] | None],
                 answer: Callable[[bytes, str], Response], media_type: str, back_url: str,
                 refused: Callable[[], Awaitable[Response]]) -> Response:
    """A file to download, built as a job: ``build()`` (in the job's thread, with a connection)
    gives ``(content, name)``, or None (or no name) when the query is refused — then ``refused()``
    answers, with the page and its message. Quick: ``answer(content, name)`` sends the file at
    once, as before; long: the job's page offers it when it is ready."""

    def work(progress: background.Progress) -> background.Outcome:
        progress.phase("background.phase.writing")
        made = build()
        if not made or made[0] is None or not made[1]:
            return background.Outcome(url=back_url)
        content, name = made
        return background.Outcome(file=content, file_name=name, file_type=media_type,
                                  summary="background.summary.file")

    async def respond(outcome: background.Outcome) -> Response:
        if outcome.file is None:
            return await refused()
        return answer(outcome.file, outcome.file_name)

    return await follow(request, kind=kind, title=title, work=work, answer=respond, back_url=back_url)


def file_response(data: bytes, name: str, media_type: str) -> Response:
    """A download with a Vietnamese file name kept (RFC 6266's ``filename*``) and an ASCII fallback."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name) or "tep"
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
    return Response(data, media_type=media_type or "application/octet-stream",
                    headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "private, no-store"})
