"""Message catalogues, language choice and Vietnamese number and date formats.

Flat JSON catalogues per language: ``core/locale/<lang>.json`` for the core
and the screens, ``<plugin package>/locale/<lang>.json`` for a plugin (whose
keys must start with ``<plugin name>.``). A topic may keep its messages in a file
of its own, ``<lang>.<topic>.json`` beside them (``vi.regimes.json``), so that
work on different screens does not meet in one file; a key in two files is refused. Keys, not sentences, are the message
ids so that a wording can change in one language without touching code.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

from core import clock

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
CORE_LOCALE_DIR = Path(__file__).with_name("locale")


def locale_files(directory: Path, lang: str) -> list[Path]:
    """``<lang>.json`` then the topic files ``<lang>.<topic>.json`` of one language, in name order."""
    directory = Path(directory)
    main = directory / f"{lang}.json"
    return ([main] if main.is_file() else []) + sorted(directory.glob(f"{lang}.*.json"))


def read_locale_dir(directory: Path) -> dict[str, dict[str, str]]:
    """Language → the messages of ``<directory>/<lang>.json`` and ``<lang>.*.json``; a key in two
    files is refused."""
    messages = {}
    for lang in LANGUAGES:
        entries: dict[str, str] = {}
        for path in locale_files(directory, lang):
            part = json.loads(path.read_text(encoding="utf-8"))
            twice = sorted(set(part) & set(entries))
            if twice:
                raise ValueError(f"{path.name}: key {twice[0]!r} is already defined in another file")
            entries.update(part)
        messages[lang] = entries
    return messages


class Catalog:
    """Messages of every language, merged from the core and from plugins (whose key namespace
    ``core.registry`` checks before they are merged)."""

    def __init__(self):
        self.messages: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}

    def add(self, messages: dict[str, dict[str, str]]) -> None:
        """Merge language → messages (as ``read_locale_dir`` returns them)."""
        for lang in LANGUAGES:
            self.messages[lang].update(messages.get(lang, {}))

    def add_dir(self, directory: Path) -> None:
        self.add(read_locale_dir(directory))

    def gettext(self, lang: str, key: str, /, **params) -> str:
        # Positional-only: a message may itself have a {key} parameter.
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        text = self.messages[lang].get(key) or self.messages[DEFAULT_LANGUAGE].get(key)
        if text is None:
            # A missing key is a bug the catalogue test catches; show the key, never crash a page.
            return key
        try:
            return text.format(**params) if params else text
        except (KeyError, IndexError, ValueError):
            return text

    def copy(self) -> "Catalog":
        other = Catalog()
        other.messages = {lang: dict(msgs) for lang, msgs in self.messages.items()}
        return other


@lru_cache(maxsize=1)
def core_catalog() -> Catalog:
    catalog = Catalog()
    catalog.add_dir(CORE_LOCALE_DIR)
    return catalog


# The catalogue of the app, command or worker this context serves: the core's messages and its
# plugins' (core.registry builds it; core.reporting.events.use names it with the plugin manager).
# An error raised by a plugin's code then reads in words wherever it is shown outside a page — an
# outbox message's last error, a command's output, the plugins page — not as its key.
_current_catalog: contextvars.ContextVar[Catalog | None] = contextvars.ContextVar("baocao_catalog", default=None)


def use_catalog(catalog: Catalog | None):
    """Name this context's catalogue; returns the token for ``reset_catalog``."""
    return _current_catalog.set(catalog)


def reset_catalog(token) -> None:
    _current_catalog.reset(token)


def current_catalog() -> Catalog:
    """This context's catalogue, else the core's own."""
    return _current_catalog.get() or core_catalog()


def negotiate(accept_language: str | None) -> str | None:
    """The first supported language in an Accept-Language header, by quality."""
    if not accept_language:
        return None
    ranked = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            quality = float(q) if q else 1.0
        except ValueError:
            continue
        if quality <= 0:
            continue  # q=0 means "not acceptable" (RFC 9110 §12.4.2), not "least preferred"
        ranked.append((-quality, i, tag.strip().lower().split("-")[0]))
    for _, _, tag in sorted(ranked):
        if tag in LANGUAGES:
            return tag
    return None


def format_number(value, lang: str = DEFAULT_LANGUAGE, decimals: int | None = None) -> str:
    """1234.5 → '1.234,5' in Vietnamese, '1,234.5' in English; None → ''."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value))
    if decimals is None:
        # The digits the number needs: PostgreSQL's numeric(…, 6) answers 120.500000 for 120.5.
        text = format(number.normalize(), "f")
        decimals = len(text.split(".")[1]) if "." in text else 0
    # Half up, as statistical tables are rounded (format() alone rounds half to even: 2.5 → "2").
    number = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    text = f"{number:,.{decimals}f}"
    if lang == "vi":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def format_date(value, lang: str = DEFAULT_LANGUAGE) -> str:
    """dd/mm/yyyy in Vietnamese, ISO 8601 (yyyy-mm-dd) in English; None → ''."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = clock.local(value).date()  # a stored (UTC) time: the day it was where people are
    return value.strftime("%d/%m/%Y") if lang == "vi" else value.isoformat()


def format_datetime(value, lang: str = DEFAULT_LANGUAGE, tz: dt.tzinfo | None = None) -> str:
    """Shown in the instance's time zone (``time_zone``, core.clock) unless told otherwise; stored
    values are UTC."""
    if value is None:
        return ""
    value = clock.local(value)
    if tz:
        value = value.astimezone(tz)
    return value.strftime("%H:%M %d/%m/%Y") if lang == "vi" else value.strftime("%Y-%m-%d %H:%M")


def fold(text: str) -> str:
    """Lower-case without diacritics, for search ("Dân số" → "dan so"; đ → d)."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in text if unicodedata.category(c) != "Mn").lower()
