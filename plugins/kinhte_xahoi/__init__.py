"""Socio-economic reporting (báo cáo kinh tế - xã hội): the provincial periodic regime run by the planning department.

This release declares the plugin (name, permissions, per-unit switch); its
screens arrive with the issues that build regimes, forms and reports.
"""

from core.api import Domain, Permission, __version__, hookimpl

NAME = "kinhte_xahoi"


@hookimpl
def register_domain(settings):
    return Domain(
        name=NAME,
        label=f"{NAME}.label",
        description=f"{NAME}.description",
        version=__version__,
        permissions=(
            Permission("kinhte_xahoi.regime.view", "kinhte_xahoi.perm.regime.view", delegable=True),
            Permission("kinhte_xahoi.regime.edit", "kinhte_xahoi.perm.regime.edit"),
            Permission("kinhte_xahoi.report.view", "kinhte_xahoi.perm.report.view", delegable=True),
            Permission("kinhte_xahoi.report.submit", "kinhte_xahoi.perm.report.submit", delegable=True),
            Permission("kinhte_xahoi.report.approve", "kinhte_xahoi.perm.report.approve", delegable=True),
        ),
    )
