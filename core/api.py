"""The public plugin API of the domain layer.

Plugins import from here (and ``web.api`` for screens) and nothing else of
baocao: everything else in ``core`` is private and may change.
"""

from core import CORE_API, __version__
from core.audit import record as audit_record
from core.db import BaseModel, db, plugin_base, run_db, transaction
from core.errors import BaocaoError, Forbidden, NotFound, PluginError, ValidationError
from core.hookspecs import hookimpl
from core.i18n import fold, format_date, format_number
from core.models import Unit, User
from core.registry import Domain, MenuItem, Permission, Widget
from core.settings import Settings

__all__ = [
    "CORE_API", "__version__", "audit_record", "BaseModel", "db", "plugin_base", "run_db", "transaction",
    "BaocaoError", "Forbidden", "NotFound", "PluginError", "ValidationError", "hookimpl",
    "fold", "format_date", "format_number", "Unit", "User", "Domain", "MenuItem", "Permission",
    "Widget", "Settings",
]
