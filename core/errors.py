"""Errors of the domain layer.

Every error a person can cause carries a message key from the catalogue, so the
same failure reads in Vietnamese and English wherever it surfaces: a one-line
message on the operator's terminal, a field message on a screen, a log line.
"""

from __future__ import annotations

from core.i18n import current_catalog


class BaocaoError(Exception):
    """An expected failure with a translatable message (``key`` in the catalogue)."""

    key = "error.generic"
    # The HTTP answer this refusal deserves when it leaves a view (web.errors.domain_error),
    # so no route converts it by hand; None: a view must handle it (a form error, say).
    status: int | None = None

    def __init__(self, key: str | None = None, /, **params):
        # ``key`` is positional-only so that a message may have a ``{key}`` parameter
        # (e.g. a plugin's message key) without clashing with the catalogue key.
        self.key = key or self.key
        self.params = params
        super().__init__(self.key)

    def message(self, lang: str = "vi") -> str:
        return current_catalog().gettext(lang, self.key, **self.params)

    def __str__(self) -> str:
        # The operator reads both languages on one line.
        vi, en = self.message("vi"), self.message("en")
        return vi if vi == en else f"{vi} / {en}"


class SettingsError(BaocaoError):
    """The settings file or environment holds something unusable."""


class StartupError(BaocaoError):
    """The application refuses to start (production safety checks, essential plugin failure)."""


class PluginError(BaocaoError):
    """A plugin's declaration breaks a rule; only that plugin is marked failed."""


class NotFound(BaocaoError):
    key = "error.not_found"
    status = 404


class Forbidden(BaocaoError):
    key = "error.forbidden"
    status = 403


class ValidationError(BaocaoError):
    """Bad input on a form: ``errors`` maps field names to message keys."""

    key = "error.validation"

    def __init__(self, errors: dict[str, str], **params):
        super().__init__(**params)
        self.errors = errors
