"""Pure ASGI middleware (no ``BaseHTTPMiddleware``: it runs the endpoint in another
task, which breaks thread- and task-local database connections).

Order, outermost first: request id and security headers → access log and request metrics →
the 500 page → trusted hosts → session and request context → per-caller budgets (web.rate_limits) →
request limits (NUL, body size) → CSRF.
Each plugin's mount is wrapped in ``PluginBoundary``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from http.cookies import SimpleCookie

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Mount

from core import audit
from core.accounts import login as accounts
from core.accounts import api_tokens, plugin_grants
from core.activation import chain_and_plugins, enabled_plugins
from core.db import run_db
from core.errors import BaocaoError
from core.i18n import LANGUAGES, negotiate
from core.logs import log_access
from core.metrics import UNMATCHED
from core.safe_input import parse_int
from core.reporting import facade as reporting
from web.htmx import HtmxDetails
from web.params import megabytes

log = logging.getLogger("baocao.web")

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
MFA_VERIFY_PATH = "/login/verify"
API_PREFIX = "/api/v1/"  # the read-only JSON API: GET and HEAD only, a bearer token or the session cookie
# ...but for one path: a report's values may be written (PUT) by a session with the CSRF header or a
# token created with "may write" (core.accounts.api_tokens.ApiToken.can_write).
WRITABLE_API = re.compile(r"^/api/v1/reports/\d+/values$")
MAX_FORM_BYTES = 10 * 1024 * 1024
MAX_FORM_FIELDS = 40_000  # the largest form grid (400 rows × 40 columns) posts 2 fields per cell
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


def cookie_names(settings) -> dict[str, str]:
    # The __Host- prefix pins a cookie to this host over HTTPS; browsers refuse it without Secure.
    prefix = "__Host-" if settings.secure_cookies else ""
    return {"session": f"{prefix}baocao_session", "csrf": f"{prefix}baocao_csrf", "lang": "baocao_lang"}


def cookie_header(name: str, value: str, settings, *, max_age: int | None = None, http_only=True) -> str:
    parts = [f"{name}={value}", "Path=/", "SameSite=Lax"]
    if http_only:
        parts.append("HttpOnly")
    if settings.secure_cookies:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def read_cookies(scope) -> dict[str, str]:
    raw = Headers(scope=scope).get("cookie", "")
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001 — a mangled cookie header is treated as none
        return {}
    return {k: m.value for k, m in jar.items()}


def csrf_token_for(secret: str, seed: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{seed}".encode(), hashlib.sha256).hexdigest()


class SecurityHeadersMiddleware:
    """A request id for every request, and the security headers on every response."""

    def __init__(self, app, settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                headers["X-Request-ID"] = request_id
                if self.settings.production:
                    headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
                if scope["path"].startswith("/static/") and not self.settings.mode == "development":
                    # Pages link static files with a content fingerprint (?v=…), so a changed
                    # file gets a new URL; the cached copy may live long.
                    headers["Cache-Control"] = "public, max-age=604800"
                elif scope["state"].get("actor") is not None and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def route_template(scope, root_path: str) -> str:
    """The template of the route that answered (``/reports/{id:int}``), not the raw path:
    one metric series per route, and no token of a link in the log. The routers leave the innermost
    route in ``scope["route"]`` and each mount's matched prefix in ``root_path`` (the mounts' paths
    have no parameters)."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED  # refused before routing (host, CSRF, limits), or no route matched
    prefix = scope.get("root_path", "")[len(root_path):]
    if isinstance(route, Mount):  # a mounted app (/static) or a mount none of whose routes matched
        return f"{prefix}/{{path:path}}"
    return prefix + getattr(route, "path", "")


class ObservedRequests:
    """Every request, once answered: one access record (core.logs, logger ``baocao.access``) and its
    duration in the request metrics (core.metrics). Inside the request id, outside the 500 page, so
    it sees the final status; who asked and for which unit are read from the state the request
    context fills further in, after the answer."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, root_path, status = time.perf_counter(), scope.get("root_path", ""), 500

        async def send_watching(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_watching)
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            route = route_template(scope, root_path)
            self.metrics.observe_request(scope["method"], route, status, seconds)
            state = scope.get("state", {})
            actor, unit = state.get("actor"), state.get("unit")
            log_access({"request_id": state.get("request_id", ""), "method": scope["method"], "route": route,
                        "status": status, "duration_ms": round(seconds * 1000, 1),
                        "user_id": actor.id if actor is not None else None,
                        "username": actor.username if actor is not None else None,
                        "unit_id": unit.id if unit is not None else None,
                        "client": (scope.get("client") or ("",))[0]})


class ResponseWatch:
    """A ``send`` that remembers whether the response has begun: once it has, an
    error page can no longer replace it and the exception must travel on."""

    def __init__(self, send):
        self.send, self.started = send, False

    async def __call__(self, message):
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class ServerErrorPage:
    """An unhandled exception becomes the 500 page here, inside SecurityHeadersMiddleware.

    Starlette answers its ``Exception`` handler from its outermost middleware,
    past every header set here, so a 500 page went out without CSP, nosniff or
    no-store (and it shows the user's name). The handler logs the traceback;
    the exception goes no further once the page is sent.
    """

    def __init__(self, app, handler):
        self.app, self.handler = app, handler

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        watch = ResponseWatch(send)
        try:
            await self.app(scope, receive, watch)
        except Exception as exc:  # noqa: BLE001 — every failure gets the same page
            if watch.started:
                raise
            response = await self.handler(Request(scope, receive), exc)
            await response(scope, receive, send)


class RequestContextMiddleware:
    """Who is asking, for which unit, in which language, and which plugins are on for them."""

    def __init__(self, app, settings, registry, pm):
        self.app, self.settings, self.registry, self.pm = app, settings, registry, pm
        self.names = cookie_names(settings)

    def _load(self, token, bearer=None):
        if bearer is not None:  # an API request with a personal access token: that user, no session
            state = accounts.SessionState(api_tokens.authenticate(bearer))
        else:
            state = accounts.resume_session(token, idle_minutes=self.settings.session_idle_minutes,
                                            lifetime_hours=self.settings.session_lifetime_hours,
                                            admin_idle_minutes=self.settings.admin_session_idle_minutes)
        user = state.user
        unit = user.unit if user is not None else None
        healthy = set(self.pm.healthy)
        if unit is not None:  # the chain is read once, used twice
            chain, enabled = chain_and_plugins(unit.id, self.registry, self.settings, healthy)
        else:
            chain, enabled = (), enabled_plugins(None, self.registry, self.settings, healthy)
        # The user's grants, and the roles a plugin's records give them (a delegation in force, say).
        access = plugin_grants.request_access(user, chain, enabled, self.pm, self.registry, self.settings)
        return state, unit, enabled, access

    async def __call__(self, scope, receive, send):
        # Neither the health check, the metrics scrape (its own token: web.routes.metrics) nor security.txt
        # (anyone's, RFC 9116: web.routes.well_known) is a visit: no session read, no cookie set.
        if scope["type"] != "http" or scope["path"].startswith("/static/") or scope["path"] in (
                "/healthz", "/metrics", "/.well-known/security.txt"):
            return await self.app(scope, receive, send)
        bearer = None
        if scope["path"].startswith(API_PREFIX):
            from web.routes.api import bearer_token, json_error

            writing = scope["method"] == "PUT" and WRITABLE_API.match(scope["path"]) is not None
            if scope["method"] not in ("GET", "HEAD") and not writing:  # read-only: refused before anything is read
                return await json_error(405, "method_not_allowed", headers={"Allow": "GET, HEAD"})(scope, receive, send)
            bearer = bearer_token(Headers(scope=scope))
        cookies = read_cookies(scope) if bearer is None else {}
        # Audit events written while serving this request carry its id and the client address.
        client = scope.get("client") or ("", 0)
        audit.current_request.set(audit.RequestInfo(scope.get("state", {}).get("request_id", ""), client[0]))
        # Report transitions made while serving this request reach this app's plugins (core.reporting.events).
        reporting.use_plugins(self.pm, self.registry, self.settings)
        # The language the person's browser asks for, before the session is read: if the database
        # fails while reading it, the error page is in that language too (the account's own
        # preference replaces it once the session is read).
        browser_lang = (cookies.get(self.names["lang"]) if cookies.get(self.names["lang"]) in LANGUAGES else None) \
            or negotiate(Headers(scope=scope).get("accept-language")) or self.settings.language
        scope.setdefault("state", {})["lang"] = browser_lang
        session_state, unit, enabled, access = await run_db(self._load, cookies.get(self.names["session"]), bearer)
        if bearer is not None and session_state.user is None:  # never a redirect to the login page
            log.warning("API bearer token refused for %s", scope["path"][:200])
            return await json_error(401, "unauthenticated", headers={
                "WWW-Authenticate": 'Bearer realm="baocao", error="invalid_token"'})(scope, receive, send)
        if bearer is not None and scope["method"] == "PUT" and not await run_db(api_tokens.may_write, bearer):
            # A token created read-only (the default) writes nothing: refused before the body is read.
            return await json_error(403, "token_read_only", key="report_entry.api.token_read_only")(
                scope, receive, send)
        state = scope.setdefault("state", {})
        actor = session_state.user
        state.update(actor=actor, unit=unit, enabled=enabled, access=access, session_expired=session_state.expired,
                     api_bearer=bearer is not None,
                     htmx=HtmxDetails(Headers(scope=scope)), session=session_state,
                     # Waiting for the second factor: logged out everywhere but on the page that asks for it.
                     mfa_user=session_state.pending_user if scope["path"] == MFA_VERIFY_PATH else None)
        state["lang"] = (actor.language if actor is not None and actor.language in LANGUAGES else None) or browser_lang

        seed = cookies.get(self.names["csrf"])
        new_seed = None
        if not seed or len(seed) > 64:
            seed = new_seed = secrets.token_urlsafe(24)
        state["csrf_seed"] = seed
        state["csrf_token"] = csrf_token_for(self.settings.secret_key, seed)

        clear_session = session_state.expired

        async def send_with_cookies(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if new_seed and not state.get("csrf_rotated") and bearer is None:
                    headers.append("Set-Cookie", cookie_header(self.names["csrf"], new_seed, self.settings))
                if clear_session and not state.get("session_started"):
                    headers.append("Set-Cookie", cookie_header(self.names["session"], "", self.settings, max_age=0))
            await send(message)

        await self.app(scope, receive, send_with_cookies)


MB = 1024 * 1024
# A body is refused once it passes its limit plus this margin: room for the multipart envelope
# around a file of exactly the limit, and for the view's own size check to answer a file a
# little too large with its own message where the user sees it (htmx swaps a 422, not a 413).
BODY_MARGIN = 1 * MB


def body_limits(settings) -> tuple[tuple[str, re.Pattern, int], ...]:
    """Routes whose body limit is not ``MAX_FORM_BYTES``: (method, path, bytes), each with its
    reason. The limit is the documented one, the one a refusal names."""
    from core.signatures.trust import MAX_CRL_BYTES
    from web.params import MAX_JSON_BYTES

    return (
        # An attachment up to the documented attachment_max_mb, sent by a plain form or by htmx.
        ("POST", re.compile(r"^/reports/[0-9]+/attachments$"), settings.attachment_max_mb * MB),
        ("POST", re.compile(r"^/admin/trust/crls$"), MAX_CRL_BYTES),  # national CRLs reach several MB
        ("PUT", WRITABLE_API, MAX_JSON_BYTES),  # a report's values as JSON: far less than the form limit
    )


class RequestRefused(Exception):
    """Raised by the bounded ``receive`` below; answered by ``RequestLimits``."""

    def __init__(self, status: int, reason: str, **params):
        super().__init__(reason)
        self.status, self.reason, self.params = status, reason, params


class RequestLimits:
    """Every request bounded before anything reads it (issue 12 items 7 and 12):

    - a NUL character in the path or the query string is a 400 (PostgreSQL cannot store it,
      and no screen needs it); in a url-encoded form body too, found while it streams;
    - a body larger than its route's limit (``body_limits``, else ``MAX_FORM_BYTES``) is a 413:
      at once when Content-Length says so, else as soon as the streamed bytes pass the limit,
      so a body without Content-Length (chunked) is never read past it either.

    JSON bodies are bounded in depth where they are parsed (``web.params.read_json``).
    """

    def __init__(self, app, settings, render_error):
        self.app, self.render_error = app, render_error
        self.limits = body_limits(settings)

    def limit_for(self, method: str, path: str) -> int:
        for limit_method, pattern, size in self.limits:
            if method == limit_method and pattern.match(path):
                return size
        return MAX_FORM_BYTES

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            return await self._refuse(scope, receive, send, RequestRefused(400, "nul"))
        allowed = self.limit_for(scope["method"], scope["path"])
        limit = allowed + BODY_MARGIN
        too_large = RequestRefused(413, "body_too_large", limit=megabytes(allowed))
        headers = Headers(scope=scope)
        declared = parse_int((headers.get("content-length") or "").strip(), minimum=0, maximum=2**62)
        if declared is not None and declared > limit:
            return await self._refuse(scope, receive, send, too_large)
        scope.setdefault("state", {})["body_limit"] = limit
        urlencoded = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        received, tail = 0, b""

        async def bounded_receive():
            nonlocal received, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise too_large
                if urlencoded:
                    window = tail + chunk  # "%00" may straddle two chunks
                    if b"%00" in window or b"\x00" in window:
                        raise RequestRefused(400, "nul")
                    tail = window[-2:]
            return message

        watch = ResponseWatch(send)
        try:
            await self.app(scope, bounded_receive, watch)
        except RequestRefused as exc:
            if watch.started:
                raise
            await self._refuse(scope, receive, send, exc)

    async def _refuse(self, scope, receive, send, exc: RequestRefused):
        log.warning("request refused (%s %s) for %s %s", exc.status, exc.reason, scope["method"], scope["path"][:200])
        if scope["path"].startswith(API_PREFIX):
            from web.routes.api import json_error

            response = json_error(exc.status, "bad_request" if exc.status == 400 else "too_large",
                                  key=f"error.reason.{exc.reason}", **exc.params)
        else:
            response = await self.render_error(Request(scope, receive), exc.status, exc.reason, **exc.params)
        await response(scope, receive, send)


class CSRFMiddleware:
    """Every state-changing request carries the token: ``X-CSRF-Token`` (htmx) or a
    ``csrf_token`` form field. Cross-site requests are refused before that."""

    def __init__(self, app, settings, render_error):
        # Middleware sits outside Starlette's exception handling, so it renders
        # its refusal itself with the app's error page.
        self.app, self.settings, self.render_error = app, settings, render_error

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        state = scope.get("state", {})
        if state.get("api_bearer") and scope["path"].startswith(API_PREFIX):
            # A bearer token is no ambient credential a foreign page could make the browser send.
            return await self.app(scope, receive, send)
        expected = state.get("csrf_token")
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return await self._refuse(scope, receive, send, "cross-site")
        origin = headers.get("origin")
        if origin and origin != "null" and origin.split("://", 1)[-1] != headers.get("host", ""):
            return await self._refuse(scope, receive, send, "origin")
        supplied = headers.get("x-csrf-token")
        body_messages = []
        if supplied is None:
            body, more = b"", True
            while more:
                message = await receive()
                body_messages.append(message)
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > state.get("body_limit", MAX_FORM_BYTES):  # RequestLimits stops it first
                    return await self._refuse(scope, receive, send, "size", status=413)
            replay = list(body_messages)

            async def replay_receive():
                return replay.pop(0) if replay else {"type": "http.disconnect"}

            try:
                # A report's grid posts two fields per cell (value, base): far more than 1,000.
                form = await Request(scope, replay_receive).form(max_fields=MAX_FORM_FIELDS)
                supplied = form.get("csrf_token")
                await form.close()
            except Exception:  # noqa: BLE001 — an unparsable body carries no token
                supplied = None
        # As bytes: compare_digest raises TypeError (a 500) on a str with non-ASCII characters, and
        # the token comes from a form field or a header anyone can fill.
        if not expected or not isinstance(supplied, str) \
                or not hmac.compare_digest(supplied.encode("utf-8", "surrogatepass"), expected.encode()):
            return await self._refuse(scope, receive, send, "token")
        if body_messages:
            pending = list(body_messages)

            async def receive_again():
                return pending.pop(0) if pending else await receive()

            return await self.app(scope, receive_again, send)
        return await self.app(scope, receive, send)

    async def _refuse(self, scope, receive, send, reason, status=403):
        log.warning("CSRF check failed (%s) for %s %s", reason, scope["method"], scope["path"])
        response = await self.render_error(Request(scope, receive), status, "csrf" if status == 403 else None)
        await response(scope, receive, send)


class PluginBoundary:
    """Around one plugin's mount: 404 where the plugin is off for the user's unit,
    503 when it failed, and its exceptions turned into an error page that names
    nothing but the request id, while the log gets the plugin name and traceback."""

    def __init__(self, app, plugin: str, pm):
        self.app, self.plugin, self.pm = app, plugin, pm

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        info = self.pm.infos.get(self.plugin)
        if info is None or not info.ok:
            raise HTTPException(503, detail="plugin_unavailable")
        if self.plugin not in scope.get("state", {}).get("enabled", ()):
            raise HTTPException(404)
        scope["state"]["plugin"] = self.plugin  # whose request this is: web.api.plugin_settings reads it
        watch = ResponseWatch(send)
        try:
            await self.app(scope, receive, watch)
        except (HTTPException, RequestRefused):  # a refusal, answered outside
            raise
        except Exception as exc:  # noqa: BLE001 — the plugin's fault, not the server's
            if getattr(exc, "status", None) is not None and isinstance(exc, BaocaoError):
                raise  # core.api.NotFound/Forbidden: a refusal too (web.errors.domain_error answers it)
            self.pm.record_error(self.plugin, "request", exc)
            if watch.started:
                raise
            raise PluginRequestError(self.plugin) from exc


class PluginRequestError(Exception):
    """A plugin view raised; rendered as a 500 page without details."""

    def __init__(self, plugin: str):
        super().__init__(plugin)
        self.plugin = plugin
