"""htmx request details and response helpers (after django-htmx)."""

from __future__ import annotations

import json
from urllib.parse import unquote

from starlette.responses import RedirectResponse, Response


class HtmxDetails:
    """What the htmx headers of a request say. Truthy for an htmx request."""

    def __init__(self, headers):
        self._headers = headers

    def _get(self, name: str) -> str | None:
        value = self._headers.get(name)
        if value is not None and self._headers.get(f"{name}-URI-AutoEncoded") == "true":
            value = unquote(value)
        return value

    def __bool__(self) -> bool:
        return self._get("HX-Request") == "true"

    @property
    def boosted(self) -> bool:
        return self._get("HX-Boosted") == "true"

    @property
    def history_restore(self) -> bool:
        return self._get("HX-History-Restore-Request") == "true"

    @property
    def target(self) -> str | None:
        return self._get("HX-Target")

    @property
    def current_url(self) -> str | None:
        return self._get("HX-Current-URL")

    @property
    def wants_partial(self) -> bool:
        """A fragment is wanted: htmx, but not a boosted link or a history restore."""
        return bool(self) and not self.boosted and not self.history_restore


def hx_redirect(url: str, status_code: int = 200) -> Response:
    """Tell htmx to navigate (a bare 302 would be followed and swapped into the page)."""
    return Response(status_code=status_code, headers={"HX-Redirect": url})


def see_other(request, url: str) -> Response:
    """After a successful POST: navigate htmx with HX-Redirect, a plain form with 303 See Other."""
    if getattr(request.state, "htmx", None):
        return hx_redirect(url)
    return RedirectResponse(url, status_code=303)


def hx_trigger(response: Response, event: str, params: dict | None = None, after: str = "receive") -> Response:
    """Add a client event, merging with events already set on the response."""
    header = {"receive": "HX-Trigger", "settle": "HX-Trigger-After-Settle",
              "swap": "HX-Trigger-After-Swap"}[after]
    existing = response.headers.get(header)
    events = json.loads(existing) if existing and existing.startswith("{") else (
        {name.strip(): None for name in existing.split(",")} if existing else {})
    events[event] = params
    response.headers[header] = json.dumps(events, ensure_ascii=False)
    return response
