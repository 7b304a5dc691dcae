"""Sector reporting (báo cáo chuyên ngành): regimes a department runs for its own sector (Điều 6.3 of the provincial regulation).

This release declares the plugin (name, per-unit switch); its screens, and the permissions
that guard them, arrive with the issues that build them (a permission nothing checks is not declared).
"""

from core.api import Domain, __version__, hookimpl

NAME = "chuyen_nganh"


@hookimpl
def register_domain(settings):
    return Domain(
        name=NAME,
        label=f"{NAME}.label",
        description=f"{NAME}.description",
        version=__version__,
    )
