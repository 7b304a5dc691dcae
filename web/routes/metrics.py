"""``/metrics``: the Prometheus scrape (docs/observability.md), guarded by its own token.

Not a page: no session is read (``RequestContextMiddleware`` passes it by), no CSRF applies (GET
only), nothing is audited per scrape. Without the setting ``metrics_token`` it does not exist (404);
with it, ``Authorization: Bearer <token>`` or 401. The guard is the token, so the route is marked
public for the permission check.
"""

from __future__ import annotations

import hmac
import logging

from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from core.db import run_db
from core.i18n import core_catalog
from core.metrics import CONTENT_TYPE
from web.guards import public
from web.routes.api import bearer_token

log = logging.getLogger("baocao.metrics")
PATH = "/metrics"


def _refusal(key: str, status: int, **headers) -> Response:
    catalog = core_catalog()  # a machine reads it, an operator debugging the scrape too: both languages
    text = f"{catalog.gettext('vi', key)}\n{catalog.gettext('en', key)}\n"
    return PlainTextResponse(text, status_code=status, headers=headers or None)


@public
async def metrics(request):
    token = request.app.state.settings.metrics_token
    if not token:  # as any unknown address: a prober learns nothing
        return PlainTextResponse("Not Found", status_code=404)
    supplied = bearer_token(request.headers) or ""
    # compare_digest on bytes: its time does not tell how much of the token was right.
    if not hmac.compare_digest(supplied.encode(), token.encode()):
        log.warning("metrics scrape refused: %s token from %s", "wrong" if supplied else "no",
                    request.client.host if request.client else "-")
        return _refusal("observability.metrics.token", 401,
                        **{"WWW-Authenticate": 'Bearer realm="baocao-metrics"'})
    body = await run_db(request.app.state.metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


ROUTES = [Route(PATH, metrics, methods=["GET"], name="metrics")]
