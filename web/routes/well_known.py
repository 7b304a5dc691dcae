"""``/.well-known/security.txt`` (RFC 9116): where a person who finds a vulnerability reports it
(security.md VN-03, TCVN 14423 5.17: a vulnerability-report channel).

Served to anyone, as the RFC asks: no login, no session, no CSRF (GET only), never rate-limited,
nothing audited. Written afresh on each request from the settings ``security_contact``,
``security_policy_url`` and ``public_url``; without a contact it does not exist (404, as any unknown
address), and a production server says so in its log at start (``warn_if_unconfigured``): a missing
contact is a gap in the owner's paperwork, not a danger to the data, so it does not stop the server.
"""

from __future__ import annotations

import datetime as dt
import logging

from starlette.responses import PlainTextResponse
from starlette.routing import Route

from core import clock
from web.guards import public

log = logging.getLogger("baocao.security_txt")
PATH = "/.well-known/security.txt"
# RFC 9116 §2.5.5: Expires "less than a year into the future". Half a year from the start of today
# (UTC): the same text all day long, and still far ahead for a copy a finder keeps.
EXPIRES_AFTER = dt.timedelta(days=180)
LANGUAGES = ("vi", "en")  # the languages a report is read in (Preferred-Languages)


def expires(now: dt.datetime) -> dt.datetime:
    """The ``Expires`` instant for a file written at ``now`` (aware)."""
    start_of_day = now.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return start_of_day + EXPIRES_AFTER


def security_txt(settings, catalog) -> str | None:
    """The file's text, or None when no contact is configured."""
    if not settings.security_contact:
        return None
    # Comments first, in both languages (RFC 9116 §2.3: lines starting with "#").
    lines = [f"# {catalog.gettext(lang, 'wellknown.security_txt.comment')}" for lang in LANGUAGES]
    lines += [f"Contact: {contact}" for contact in settings.security_contact]  # the preferred first (§2.5.3)
    lines.append(f"Expires: {expires(clock.now_utc()).strftime('%Y-%m-%dT%H:%M:%SZ')}")
    lines.append(f"Preferred-Languages: {', '.join(LANGUAGES)}")
    if settings.public_url.startswith("https://"):  # §2.5.2: where this very file is published
        lines.append(f"Canonical: {settings.public_url.rstrip('/')}{PATH}")
    if settings.security_policy_url:
        lines.append(f"Policy: {settings.security_policy_url}")
    return "\n".join(lines) + "\n"


@public
async def security_txt_view(request):
    text = security_txt(request.app.state.settings, request.app.state.registry.catalog)
    if text is None:  # as any unknown address
        return PlainTextResponse("Not Found", status_code=404)
    # text/plain; charset=utf-8 (§3); a proxy may keep it an hour: Expires stays months ahead.
    return PlainTextResponse(text, headers={"Cache-Control": "public, max-age=3600"})


def warn_if_unconfigured(settings) -> None:
    """A production server without a reporting channel says so once, at start."""
    if settings.production and not settings.security_contact:
        log.warning("security_contact is not set: %s answers 404, and finders of a vulnerability have no "
                    "published address to report it to (RFC 9116; docs/settings.md)", PATH)


ROUTES = [Route(PATH, security_txt_view, methods=["GET"], name="security_txt")]
