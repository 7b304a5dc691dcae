"""Sector reporting (báo cáo chuyên ngành): regimes a department runs for its own sector (Điều 6.3 of the provincial regulation).

This release declares the plugin (name, permissions, per-unit switch); its
screens arrive with the issues that build regimes, forms and reports.
"""

from core.api import Domain, Permission, __version__, hookimpl

NAME = "chuyen_nganh"


@hookimpl
def register_domain(settings):
    return Domain(
        name=NAME,
        label=f"{NAME}.label",
        description=f"{NAME}.description",
        version=__version__,
        permissions=(
            Permission("chuyen_nganh.regime.view", "chuyen_nganh.perm.regime.view", delegable=True),
            Permission("chuyen_nganh.regime.edit", "chuyen_nganh.perm.regime.edit"),
            Permission("chuyen_nganh.report.submit", "chuyen_nganh.perm.report.submit", delegable=True),
        ),
    )
